/*
 * glint's Multiboot2 trampoline (source of trampolineCode in trampoline.go;
 * TestTrampolineMatchesSource re-assembles it with GNU as and compares).
 *
 * kexec_load's relocate_kernel jumps here in 64-bit mode with identity-mapped
 * page tables. Multiboot2 specification 1.0, section 3.3 "I386 machine state"
 * wants: 32-bit protected mode, paging off, CS a 32-bit flat code segment,
 * DS/ES/FS/GS/SS flat data segments, EFLAGS.IF clear, EAX = 0x36d76289,
 * EBX = physical address of the boot information. The loader patches the
 * two immediates (mbi_imm, entry_imm) before loading the page.
 */
	.text
	.code64
	.globl	_start
_start:
.Lpage:
	cli
	/* Multiboot2 1.0, 3.3 leaves ESP undefined, but relocate_kernel's
	 * stack sits in a kexec control page that may lie above 4 GiB, so a
	 * truncated ESP would point at random memory once paging is off. Give
	 * the OS (and the far jump) a stack at the top of this page: the
	 * trampoline segment is a whole page below 4 GiB. */
	lea	.Lpage+4096(%rip), %rsp
	lea	gdt(%rip), %rax
	mov	%rax, gdt_base(%rip)
	lgdt	gdt_desc(%rip)
	lea	prot32(%rip), %rax
	mov	%eax, far_off(%rip)
	/* far jump through memory (m16:32) into the 32-bit code segment:
	 * compatibility mode, still paged */
	ljmpl	*far_off(%rip)

	.code32
prot32:
	mov	$0x10, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	/* paging off: leaves long mode (EFER.LMA clears) */
	mov	%cr0, %eax
	and	$0x7fffffff, %eax
	mov	%eax, %cr0
	/* EFER.LME off, so a later paging enable by the OS is 32-bit */
	mov	$0xc0000080, %ecx
	rdmsr
	and	$0xfffffeff, %eax
	wrmsr
	xor	%eax, %eax
	mov	%eax, %cr4
	.byte	0xbb		/* mov $imm32, %ebx */
	.globl	mbi_imm
mbi_imm:
	.long	0
	.byte	0xb9		/* mov $imm32, %ecx */
	.globl	entry_imm
entry_imm:
	.long	0
	mov	$0x36d76289, %eax
	jmp	*%ecx

	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: code, base 0, limit 4 GiB, 32-bit */
	.quad	0x00cf92000000ffff	/* 0x10: data, base 0, limit 4 GiB */
gdt_desc:
	.word	gdt_desc - gdt - 1
gdt_base:
	.quad	0
far_off:
	.long	0
	.word	0x08
