package uploaders

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// accessPoint is an S3 access point, or an S3 on Outposts access point,
// named by its ARN where an s3:// URL names a bucket (Barman 3.20 accepts
// it as boto3 does): s3://arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME/PREFIX
// or s3://arn:aws:s3-outposts:REGION:ACCOUNT:outpost/OUTPOST/accesspoint/NAME/PREFIX.
// Requests go to the access point's own host and are signed for the ARN's
// region, and for the s3-outposts service on Outposts (AWS's "Using access
// points" and "S3 on Outposts" guides; botocore's S3 endpoint rules).
type accessPoint struct {
	arn       string
	partition string
	region    string
	account   string
	name      string
	// outpost is the Outposts ID; "" for an S3 access point.
	outpost string
}

// arnPrefix matches the start of an access point ARN as the first segment
// of an s3:// URL; the rest is checked by parseAccessPoint.
var arnPrefix = regexp.MustCompile(`^(?i)s3://arn:`)

// isAccessPointURL tells whether an s3:// URL names an ARN, which
// net/url cannot parse (its colons read as a port).
func isAccessPointURL(rawURL string) bool { return arnPrefix.MatchString(rawURL) }

// accessPointName is AWS's rule for access point names: 3 to 50 lowercase
// letters, digits and hyphens, starting and ending with a letter or digit.
var accessPointName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$`)

var (
	awsAccount = regexp.MustCompile(`^[0-9]{12}$`)
	awsRegion  = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)+-[0-9]+$`)
	outpostID  = regexp.MustCompile(`^op-[0-9a-f]{17}$`)
)

// parseAccessPoint splits s3://ARN/PREFIX into the access point and the
// prefix (percent-encoded as urlPath leaves it). The resource part may use
// "/" or ":" between its words, as boto3 accepts both.
func parseAccessPoint(rawURL string) (*accessPoint, string, error) {
	rest := rawURL[len("s3://"):]
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	fields := strings.SplitN(rest, ":", 6)
	bad := func(why string) error {
		return fmt.Errorf("invalid access point ARN in %s: %s", rawURL, why)
	}
	if len(fields) != 6 || !strings.EqualFold(fields[0], "arn") {
		return nil, "", bad("expected arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME")
	}
	ap := &accessPoint{partition: fields[1], region: fields[3], account: fields[4]}
	service := fields[2]
	// The resource's words, "/" or ":" between them, then "/" and the
	// prefix: accesspoint NAME, or outpost ID accesspoint NAME.
	need := 2
	if service == "s3-outposts" {
		need = 4
	}
	var words []string
	resource := fields[5]
	for len(words) < need && resource != "" {
		i := strings.IndexAny(resource, "/:")
		if i < 0 {
			words, resource = append(words, resource), ""
			break
		}
		words = append(words, resource[:i])
		if len(words) == need {
			resource = resource[i:] // the name ends the ARN
			break
		}
		resource = resource[i+1:]
	}
	switch {
	case service == "s3" && ap.region == "":
		return nil, "", bad("a bucket ARN or a multi-Region access point (which needs SigV4A signing) is not supported: name the bucket or a Regional access point")
	case service == "s3" && len(words) == 2 && words[0] == "accesspoint":
		ap.name = words[1]
	case service == "s3-outposts" && len(words) == 4 && words[0] == "outpost" && words[2] == "accesspoint":
		ap.outpost, ap.name = words[1], words[3]
	case service == "s3-object-lambda":
		return nil, "", bad("Object Lambda access points transform what is read; back up to the bucket or a plain access point")
	default:
		return nil, "", bad("expected arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME or arn:PARTITION:s3-outposts:REGION:ACCOUNT:outpost/ID/accesspoint/NAME")
	}
	switch {
	case ap.partition != "aws" && ap.partition != "aws-cn" && ap.partition != "aws-us-gov":
		return nil, "", bad(fmt.Sprintf("unknown partition %q", ap.partition))
	case !awsRegion.MatchString(ap.region):
		return nil, "", bad(fmt.Sprintf("region %q is not an AWS region", ap.region))
	case !awsAccount.MatchString(ap.account):
		return nil, "", bad(fmt.Sprintf("account %q is not 12 digits", ap.account))
	case !accessPointName.MatchString(ap.name):
		return nil, "", bad(fmt.Sprintf("access point name %q is not 3 to 50 lowercase letters, digits and hyphens", ap.name))
	case ap.outpost != "" && !outpostID.MatchString(ap.outpost):
		return nil, "", bad(fmt.Sprintf("outpost %q is not op- and 17 hexadecimal digits", ap.outpost))
	}
	if resource != "" && resource[0] != '/' {
		return nil, "", bad("a \"/\" must separate the access point's name from the path")
	}
	ap.arn = rest[:len(rest)-len(resource)]
	return ap, strings.TrimLeft(resource, "/"), nil
}

// hostLabel is the access point's first DNS label, NAME-ACCOUNT, which
// the S3 client takes for a virtual-host bucket name.
func (ap *accessPoint) hostLabel() string { return ap.name + "-" + ap.account }

// endpoint is the host (and port) under hostLabel that requests go to:
// AWS's own for the ARN's partition and region, or, with --endpoint-url
// (a VPC endpoint, a proxy), its host, as botocore's endpoint rules put
// it: NAME-ACCOUNT[.OUTPOST].ENDPOINT.
func (ap *accessPoint) endpoint(endpointURL string) (host string, secure bool, err error) {
	if endpointURL != "" {
		if host, secure, err = parseEndpointURL(endpointURL); err != nil {
			return "", false, err
		}
	} else {
		domain := "amazonaws.com"
		if ap.partition == "aws-cn" {
			domain = "amazonaws.com.cn"
		}
		host, secure = "s3-accesspoint."+ap.region+"."+domain, true
		if ap.outpost != "" {
			host = "s3-outposts." + ap.region + "." + domain
		}
	}
	if ap.outpost != "" {
		host = ap.outpost + "." + host
		// minio-go signs for s3-outposts only the hosts of that shape:
		// any other would be signed for s3, which Outposts refuses.
		if u := (url.URL{Scheme: "https", Host: host}); !s3utils.IsAmazonOutpostsEndpoint(u) {
			return "", false, fmt.Errorf("--endpoint-url %s cannot reach Outposts access point %s: "+
				"it must be s3-outposts.%s.amazonaws.com (at any port), whose requests are signed for s3-outposts", endpointURL, ap, ap.region)
		}
	}
	return host, secure, nil
}

func (ap *accessPoint) String() string { return ap.arn }
