# The idle guest for kvmtool (../shared/peers/lkvm), beside workload 4 of guest.S: 'S' on COM1, then nothing but
# halts. kvmtool loads a file that is not a bzImage as a flat real-mode binary at 0x10000 (cs:ip 0x1000:0), so
# this is 16-bit code. It halts with interrupts off instead of spinning: the VM's memory, read while it idles, is
# what is measured, and a halted vCPU leaves the machine's two cores to the VMMs being measured.
#
# Assembled with `as --32`, linked at 0 (`ld -m elf_i386 -Ttext=0`), flattened with objcopy.
        .code16
        .text
        .globl _start
_start:
        mov     $0x3f8, %dx
        mov     $'S', %al
        out     %al, (%dx)
        cli
1:      hlt
        jmp     1b
