# A 64 KiB firmware image for QEMU (`-bios`) that brings the CPU from reset to the state in which Swiftlet and
# the bare-C floor enter a raw image, then runs the benchmark guest (bench/guests/guest.S) at 0x1000. It lets
# QEMU run the very same guest bytes without SeaBIOS/qboot, so only QEMU's own start-up cost is measured.
#
# QEMU maps the image at 4 GiB - 64 KiB and aliases it at 0xF0000 (on -M microvm that alias is RAM). It is
# linked at 0xF0000. From the reset vector (0xFFFFFFF0, offset 0xFFF0) it:
#   real mode -> lgdt -> protected mode (CS 0x30) -> PAE, CR3, EFER.LME, paging -> 64-bit (CS 0x10)
#   -> ltr (TSS with an I/O bitmap allowing ports 0-0x3FF) -> copy the guest to 0x1000
#   -> USER=1: iretq to CPL 3 (CS 0x43, SS 0x3b, RSP 0x8000, RFLAGS.IOPL 3), like `--raw-mode user`
#      USER=0: jump at CPL 0 (RSP 0x8000, RFLAGS 0x2), like `--raw-mode long`
# About sixty instructions run at CPL 0 (emulated on nested-PVM hosts, tens of microseconds).
# The GDT, TSS and the page tables (identity map of 4 GiB with 2 MiB pages) are laid out as Swiftlet's
# BootGDT/BootPageTables lay them out, but prebuilt in the image.
#
# Build: as --64 --defsym USER=1 -I DIR (DIR holds guest.bin) ; ld -Ttext=0xf0000 ; objcopy -O binary -j .text
        .text
        .globl _start
_start:
        .set    BASE, 0xf0000
        .set    PTE, 0x3 | (USER << 2)          # present, writable, user (only for the CPL 3 variant)

pml4:   .quad   (BASE + 0x1000) | PTE
        .fill   511, 8, 0
pdpt:   .quad   (BASE + 0x2000) | PTE, (BASE + 0x3000) | PTE, (BASE + 0x4000) | PTE, (BASE + 0x5000) | PTE
        .fill   508, 8, 0
pds:    .set    page, 0
        .rept   2048
        .quad   (page << 21) | PTE | 0x80       # PS: a 2 MiB page
        .set    page, page + 1
        .endr

        .balign 16
gdt:    .quad   0, 0
        .quad   0x00af9b000000ffff              # 0x10 64-bit code, DPL 0
        .quad   0x00cf93000000ffff              # 0x18 flat data, DPL 0
        .quad   (tss_end - tss - 1) | ((BASE + tss - _start) << 16) | (0x89 << 40)  # 0x20 64-bit TSS (available)
        .quad   0
        .quad   0x00cf9b000000ffff              # 0x30 flat 32-bit code, DPL 0
        .quad   0x00cff3000000ffff              # 0x38 flat data, DPL 3
        .quad   0x00affb000000ffff              # 0x40 64-bit code, DPL 3
gdt_end:
gdtr:   .word   gdt_end - gdt - 1
        .long   gdt

        .balign 16
tss:    .long   0
        .quad   0xfff0                          # RSP0
        .fill   90, 1, 0
        .word   104                             # I/O map base: right after the 104-byte TSS
        .fill   128, 1, 0                       # ports 0-0x3FF allowed
        .byte   0xff                            # bitmap terminator
tss_end:

        .code16
start16:
        cli
        lgdtl   %cs:(gdtr - BASE)
        mov     %cr0, %eax
        or      $1, %eax
        mov     %eax, %cr0
        ljmpl   $0x30, $start32

        .code32
start32:
        mov     $0x18, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $pml4, %eax
        mov     %eax, %cr3
        mov     $0x20, %eax                     # CR4.PAE
        mov     %eax, %cr4
        mov     $0xc0000080, %ecx               # EFER
        rdmsr
        or      $0x100, %eax                    # LME
        wrmsr
        mov     $0x80000031, %eax               # PG | NE | ET | PE
        mov     %eax, %cr0
        ljmp    $0x10, $start64

        .code64
start64:
        mov     $0xfff0, %esp                   # the ring-0 stack (TSS.RSP0) for the iretq frame
        mov     $0x20, %ax
        ltr     %ax
        lea     guest(%rip), %rsi
        mov     $0x1000, %edi
        mov     $(guest_end - guest), %ecx
        rep movsb
.if USER
        pushq   $0x3b                           # SS
        pushq   $0x8000                         # RSP
        pushq   $0x3002                         # RFLAGS: IOPL 3, reserved bit 1
        pushq   $0x43                           # CS
        pushq   $0x1000                         # RIP
        iretq
.else
        mov     $0x8000, %esp
        pushq   $0x2
        popfq
        mov     $0x1000, %eax
        jmp     *%rax
.endif

guest:  .incbin "guest.bin"
guest_end:

        .code16
        .org    0xfff0                          # the reset vector, 0xFFFFFFF0 / 0xFFFF0
        ljmp    $0xf000, $(start16 - BASE)
        .org    0x10000
