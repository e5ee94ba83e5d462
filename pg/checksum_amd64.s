#include "textflag.h"

// func checksumRowsAVX2(sums *[32]uint32, rows *byte, n int)
//
// Y0-Y3 hold the 32 lanes' sums; each row of 32 words is XORed into them,
// then every lane gets CHECKSUM_COMP's t*FNV_PRIME ^ t>>17.
TEXT ·checksumRowsAVX2(SB), NOSPLIT, $0-24
	MOVQ sums+0(FP), AX
	MOVQ rows+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVDQU 0(AX), Y0
	VMOVDQU 32(AX), Y1
	VMOVDQU 64(AX), Y2
	VMOVDQU 96(AX), Y3
	VPBROADCASTD fnvPrime<>(SB), Y15
	TESTQ CX, CX
	JZ done

loop:
	VPXOR 0(SI), Y0, Y0
	VPXOR 32(SI), Y1, Y1
	VPXOR 64(SI), Y2, Y2
	VPXOR 96(SI), Y3, Y3
	VPMULLD Y15, Y0, Y4
	VPMULLD Y15, Y1, Y5
	VPMULLD Y15, Y2, Y6
	VPMULLD Y15, Y3, Y7
	VPSRLD $17, Y0, Y0
	VPSRLD $17, Y1, Y1
	VPSRLD $17, Y2, Y2
	VPSRLD $17, Y3, Y3
	VPXOR Y4, Y0, Y0
	VPXOR Y5, Y1, Y1
	VPXOR Y6, Y2, Y2
	VPXOR Y7, Y3, Y3
	ADDQ $128, SI
	DECQ CX
	JNZ loop

done:
	VMOVDQU Y0, 0(AX)
	VMOVDQU Y1, 32(AX)
	VMOVDQU Y2, 64(AX)
	VMOVDQU Y3, 96(AX)
	VZEROUPPER
	RET

DATA fnvPrime<>+0(SB)/4, $16777619
GLOBL fnvPrime<>(SB), RODATA|NOPTR, $4
