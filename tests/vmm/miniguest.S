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
 *   v  a virtio-blk driver: finds the disk on PCI bus 0, sets up one queue
 *      with EVENT_IDX, then pass N (from 1) writes 4 KiB holding N to
 *      block N % 256 and reads it back into another buffer, forever,
 *      printing "blk N ok" every 16th pass and "blk N BAD" at once for a
 *      failed request or wrong data. Its rings and read buffer are written
 *      by the device only (snapshot and migration tests of virtio state
 *      and of the dirty log of device writes); --memory 64M or more
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
	cmp $'v', %al
	je virtio_blk
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
	lea msg_ok(%rip), %rdi
	call put_pass
	inc %r12
	jmp 1b
4:	lea msg_pass(%rip), %rsi
	lea msg_bad(%rip), %rdi
	call put_pass
	inc %r12
	jmp 1b

/*
 * The virtio-blk driver. Polling, with INTx (not MSI-X) and interrupts off.
 * The BAR moves below 4 GiB, which the boot page tables map; its layout is
 * keel-vmm's (docs/virtio.md): common config at 0, ISR at 0x1000,
 * notifications at 0x3000.
 */
	.set ECAM, 0xe0000000
	.set VBAR, 0xc0000000
	.set VQ_SIZE, 16
	.set VQ_DESC, 0x3000000
	.set VQ_AVAIL, 0x3001000
	.set VQ_USED, 0x3002000
	.set VREQ_HDR, 0x3003000
	.set VREQ_STATUS, 0x3003100
	.set VBUF_W, 0x3004000
	.set VBUF_R, 0x3005000
virtio_blk:
	mov $(ECAM + (1 << 15)), %rbx   /* slot 1 onwards */
	mov $31, %ecx
1:	cmpl $0x10421af4, (%rbx)        /* 1af4:1042, virtio-blk */
	je 2f
	add $(1 << 15), %rbx
	loop 1b
	lea msg_nodisk(%rip), %rsi
	call puts
	jmp poweroff
2:	movl $VBAR, 0x10(%rbx)          /* BAR0, 64-bit: low, then high */
	movl $0, 0x14(%rbx)
	movw $0x6, 0x4(%rbx)            /* command: memory decode, bus master */
	mov $VBAR, %r14
	movb $0, 0x14(%r14)             /* device_status: reset */
	movb $1, 0x14(%r14)             /* ACKNOWLEDGE */
	movb $3, 0x14(%r14)             /* DRIVER */
	movl $0, 0x08(%r14)             /* driver features 0-31: EVENT_IDX */
	movl $(1 << 29), 0x0c(%r14)
	movl $1, 0x08(%r14)             /* 32-63: VERSION_1 */
	movl $1, 0x0c(%r14)
	movb $0xb, 0x14(%r14)           /* FEATURES_OK */
	movw $0, 0x16(%r14)             /* queue 0 */
	movw $VQ_SIZE, 0x18(%r14)
	movl $VQ_DESC, 0x20(%r14)
	movl $0, 0x24(%r14)
	movl $VQ_AVAIL, 0x28(%r14)
	movl $0, 0x2c(%r14)
	movl $VQ_USED, 0x30(%r14)
	movl $0, 0x34(%r14)
	movw $1, 0x1c(%r14)             /* queue_enable */
	movb $0xf, 0x14(%r14)           /* DRIVER_OK */
	mov $VQ_DESC, %rdi              /* header and status descriptors never change */
	movq $VREQ_HDR, (%rdi)
	movl $16, 8(%rdi)
	movw $1, 12(%rdi)               /* NEXT */
	movw $1, 14(%rdi)
	movq $VREQ_STATUS, 32(%rdi)
	movl $1, 40(%rdi)
	movw $2, 44(%rdi)               /* WRITE */
	movw $0, 46(%rdi)
	xor %r13d, %r13d                /* the avail index */
	mov $1, %r12                    /* the pass */
3:	mov $VBUF_W, %rdi
	mov $512, %ecx
	mov %r12, %rax
	rep stosq
	mov $1, %eax                    /* VIRTIO_BLK_T_OUT */
	mov $VBUF_W, %rsi
	mov $1, %edx                    /* NEXT */
	call blk_request
	jnz 5f
	xor %eax, %eax                  /* VIRTIO_BLK_T_IN */
	mov $VBUF_R, %rsi
	mov $3, %edx                    /* NEXT | WRITE */
	call blk_request
	jnz 5f
	mov $VBUF_R, %rdi
	mov $512, %ecx
4:	cmp %r12, (%rdi)
	jne 5f
	add $8, %rdi
	loop 4b
	test $15, %r12
	jnz 6f
	lea msg_blk(%rip), %rsi
	lea msg_ok(%rip), %rdi
	call put_pass
	jmp 6f
5:	lea msg_blk(%rip), %rsi
	lea msg_bad(%rip), %rdi
	call put_pass
6:	inc %r12
	jmp 3b

/*
 * blk_request: one request of type %eax on block %r12 % 256 with the data
 * buffer %rsi (its descriptor's flags in %dx); waits for it. ZF set when its
 * status is OK.
 */
blk_request:
	mov $VREQ_HDR, %rdi
	mov %eax, (%rdi)                /* type */
	movl $0, 4(%rdi)                /* ioprio */
	mov %r12, %rax
	and $255, %eax
	shl $3, %rax                    /* sector */
	mov %rax, 8(%rdi)
	movb $0xff, VREQ_STATUS
	mov $VQ_DESC, %rdi
	mov %rsi, 16(%rdi)
	movl $4096, 24(%rdi)
	mov %dx, 28(%rdi)
	movw $2, 30(%rdi)
	mov %r13d, %eax
	and $(VQ_SIZE - 1), %eax
	movw $0, VQ_AVAIL + 4(,%rax,2)  /* ring[idx % size] = head 0 */
	inc %r13w
	mov %r13w, VQ_AVAIL + 2         /* x86 keeps the stores in order */
	movw $0, 0x3000(%r14)           /* notify queue 0 */
1:	pause
	cmp %r13w, VQ_USED + 2
	jne 1b
	movb 0x1000(%r14), %al          /* ISR: acknowledge, INTx goes down */
	cmpb $0, VREQ_STATUS
	ret

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

/* put_pass: the string at %rsi, %r12 in decimal, the string at %rdi. */
put_pass:
	push %rdi
	call puts
	mov %r12, %rax
	call putdec
	pop %rsi
	jmp puts

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
msg_blk:	.asciz "blk "
msg_nodisk:	.asciz "no virtio-blk disk\n"
numbuf:		.fill 24, 1, 0
numbuf_end:	.byte 0
	.balign 16
empty_idt:	.word 0
		.quad 0
	.balign 16
stack:	.fill 512, 1, 0
stack_top:
