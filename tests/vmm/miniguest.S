/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny "kernel" in bzImage format for black-box tests of keel-vmm on any
 * KVM, including the software hypervisor of the build machines, which
 * cannot run a real Linux: a setup header like a modern kernel's and a
 * 64-bit entry point that does one thing, chosen by the first character of
 * the kernel command line:
 *
 *   h  print "hello from the mini guest" on COM1, power off through ACPI S5
 *   e  print "ready", wait for one byte on COM1, print "got <byte>", power off
 *   r  count boots in CMOS RAM byte 0x40; print "boot N"; reset through the
 *      i8042 until the third boot, then power off
 *   a  reset through the ACPI reset register
 *   c  reset through port 0xcf9
 *   t  triple fault (an invalid opcode with an empty IDT)
 *   s  spin forever (for signal tests)
 *   p  power off through ACPI with SLP_TYP=1 (not S5): must NOT power off,
 *      then print "still here" and power off properly
 *   n  count: print "count N" every 100 ms of ACPI PM timer time, forever
 *      (pause, snapshot and migration tests watch it stop and go on)
 *   b  enable the ACPI power button, print "armed", poll PM1 status until
 *      it is pressed, print "power button", power off
 *   w  print '.' on COM1 as fast as it goes, forever (restore latency: the
 *      first byte after a restore marks the guest running again)
 *   m  dirty memory: pass N writes N into every 4 KiB page of 16 MiB at
 *      32 MiB, then reads every page back and prints "pass N ok" (or
 *      "pass N BAD" at the first page that does not hold N), forever
 *      (live migration tests: every page keeps changing while it moves)
 *
 * Port numbers are those of src/hw (COM1 0x3f8, CMOS 0x70, i8042 0x64, ACPI
 * PM1a control 0x604, reset register 0x608).
 */
	.section .text
	.globl _start
_start:
	.org 0x1f1
	.byte 3                 /* setup_sects: 4 sectors of setup in all */
	.word 0                 /* root_flags */
	.long 0                 /* syssize */
	.word 0, 0, 0           /* ram_size, vid_mode, root_dev */
	.word 0xaa55            /* boot_flag */
	.byte 0xeb, 0x6a        /* jump; its offset says the header ends at 0x26c */
	.ascii "HdrS"
	.word 0x020f            /* boot protocol 2.15 */
	.long 0                 /* realmode_swtch */
	.word 0, 0              /* start_sys_seg, kernel_version */
	.byte 0                 /* type_of_loader */
	.byte 1                 /* loadflags: LOADED_HIGH */
	.word 0                 /* setup_move_size */
	.long 0x100000          /* code32_start */
	.long 0, 0              /* ramdisk_image, ramdisk_size */
	.long 0                 /* bootsect_kludge */
	.word 0                 /* heap_end_ptr */
	.byte 0, 0              /* ext_loader_ver, ext_loader_type */
	.long 0                 /* cmd_line_ptr */
	.long 0x7fffffff        /* initrd_addr_max */
	.long 0x200000          /* kernel_alignment */
	.byte 1                 /* relocatable_kernel */
	.byte 0                 /* min_alignment */
	.word 1                 /* xloadflags: XLF_KERNEL_64 */
	.long 255               /* cmdline_size */
	.long 0                 /* hardware_subarch */
	.quad 0                 /* hardware_subarch_data */
	.long 0, 0              /* payload_offset, payload_length */
	.quad 0                 /* setup_data */
	.quad 0x1000000         /* pref_address */
	.long 0x100000          /* init_size */
	.long 0                 /* handover_offset */
	.long 0                 /* kernel_info_offset */

	.org 0x800              /* the protected-mode kernel starts here ... */
	.org 0xa00              /* ... and its 64-bit entry 0x200 bytes in */
	.code64
startup_64:
	lea stack_top(%rip), %rsp
	mov 0x228(%rsi), %ebx           /* boot_params.cmd_line_ptr */
	movzbl (%rbx), %eax
	cmp $'h', %al
	je hello
	cmp $'e', %al
	je echo
	cmp $'r', %al
	je reboot_count
	cmp $'a', %al
	je acpi_reset
	cmp $'c', %al
	je cf9_reset
	cmp $'t', %al
	je triple_fault
	cmp $'s', %al
	je spin
	cmp $'p', %al
	je wrong_sleep
	cmp $'n', %al
	je counter
	cmp $'b', %al
	je power_button
	cmp $'m', %al
	je dirty_memory
	cmp $'w', %al
	je dots
	lea msg_unknown(%rip), %rsi
	call puts
	jmp poweroff

hello:
	lea msg_hello(%rip), %rsi
	call puts
	jmp poweroff

echo:
	lea msg_ready(%rip), %rsi
	call puts
1:	mov $0x3fd, %dx                 /* LSR: wait for data ready */
	in %dx, %al
	test $1, %al
	jz 1b
	mov $0x3f8, %dx
	in %dx, %al
	mov %al, %bl
	lea msg_got(%rip), %rsi
	call puts
	mov %bl, %al
	call putc
	mov $'\n', %al
	call putc
	jmp poweroff

reboot_count:
	mov $0x40, %al                  /* CMOS RAM survives a reset */
	out %al, $0x70
	in $0x71, %al
	inc %al
	mov %al, %bl
	mov $0x40, %al
	out %al, $0x70
	mov %bl, %al
	out %al, $0x71
	lea msg_boot(%rip), %rsi
	call puts
	mov %bl, %al
	add $'0', %al
	call putc
	mov $'\n', %al
	call putc
	cmp $3, %bl
	jae poweroff
	mov $0xfe, %al                  /* i8042: pulse the reset line */
	out %al, $0x64
	jmp spin

acpi_reset:
	mov $0x608, %dx
	mov $1, %al
	out %al, %dx
	jmp spin

cf9_reset:
	mov $0xcf9, %dx
	mov $0x06, %al                  /* SYS_RST | RST_CPU */
	out %al, %dx
	jmp spin

triple_fault:
	lidt empty_idt(%rip)
	ud2                             /* #UD with no IDT: #DF, then shutdown */

wrong_sleep:
	mov $0x604, %dx
	mov $((1 << 10) | (1 << 13)), %ax   /* SLP_TYP=1, SLP_EN */
	out %ax, %dx
	lea msg_still(%rip), %rsi
	call puts
	jmp poweroff

counter:
	xor %r12, %r12
1:	lea msg_count(%rip), %rsi
	call puts
	mov %r12, %rax
	call putdec
	mov $'\n', %al
	call putc
	inc %r12
	call delay_100ms
	jmp 1b

/* Identity-mapped by the boot page tables (the first 4 GiB); needs --memory 64M or more. */
	.set DIRTY_BASE, 0x2000000
	.set DIRTY_PAGES, 4096
dirty_memory:
	mov $1, %r12
1:	mov $DIRTY_BASE, %rdi
	mov $DIRTY_PAGES, %rcx
2:	mov %r12, (%rdi)
	add $4096, %rdi
	loop 2b
	mov $DIRTY_BASE, %rdi
	mov $DIRTY_PAGES, %rcx
3:	cmp %r12, (%rdi)
	jne 4f
	add $4096, %rdi
	loop 3b
	lea msg_pass(%rip), %rsi
	call puts
	mov %r12, %rax
	call putdec
	lea msg_ok(%rip), %rsi
	call puts
	inc %r12
	jmp 1b
4:	lea msg_pass(%rip), %rsi
	call puts
	mov %r12, %rax
	call putdec
	lea msg_bad(%rip), %rsi
	call puts
	inc %r12
	jmp 1b

dots:
	mov $'.', %al
	call putc
	jmp dots

power_button:
	mov $0x602, %dx                 /* PM1 enable: PWRBTN_EN */
	mov $0x100, %ax
	out %ax, %dx
	lea msg_armed(%rip), %rsi
	call puts
	mov $0x600, %dx                 /* PM1 status: wait for PWRBTN_STS */
1:	in %dx, %ax
	test $0x100, %ax
	jz 1b
	mov $0x100, %ax                 /* write 1 to clear */
	out %ax, %dx
	lea msg_pwrbtn(%rip), %rsi
	call puts
	jmp poweroff

poweroff:
	mov $0x604, %dx
	mov $((5 << 10) | (1 << 13)), %ax   /* SLP_TYP=5 (S5), SLP_EN */
	out %ax, %dx
spin:
	pause
	jmp spin

/* putc: the byte in %al to COM1 once the transmitter is empty. */
putc:
	mov %al, %ah
	mov $0x3fd, %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	mov $0x3f8, %dx
	mov %ah, %al
	out %al, %dx
	ret

/* putdec: %rax in decimal on COM1. */
putdec:
	lea numbuf_end(%rip), %rdi
	mov $10, %rcx
1:	xor %edx, %edx
	div %rcx
	add $'0', %dl
	dec %rdi
	mov %dl, (%rdi)
	test %rax, %rax
	jnz 1b
	mov %rdi, %rsi
	jmp puts

/* delay_100ms: waits for 357954 ticks (0.1 s) of the 3.579545 MHz ACPI PM timer. */
delay_100ms:
	mov $0x60c, %dx
	in %dx, %eax
	mov %eax, %ecx
1:	in %dx, %eax
	sub %ecx, %eax                  /* modulo 2^32: the timer wraps */
	cmp $357954, %eax
	jb 1b
	ret

/* puts: the NUL-terminated string at %rsi. */
puts:
	lodsb
	test %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

msg_hello:	.asciz "hello from the mini guest\n"
msg_ready:	.asciz "ready\n"
msg_got:	.asciz "got "
msg_boot:	.asciz "boot "
msg_still:	.asciz "still here\n"
msg_unknown:	.asciz "unknown command line\n"
msg_count:	.asciz "count "
msg_armed:	.asciz "armed\n"
msg_pass:	.asciz "pass "
msg_ok:		.asciz " ok\n"
msg_bad:	.asciz " BAD\n"
msg_pwrbtn:	.asciz "power button\n"
numbuf:		.fill 24, 1, 0
numbuf_end:	.byte 0
	.balign 16
empty_idt:	.word 0
		.quad 0
	.balign 16
stack:	.fill 512, 1, 0
stack_top:
