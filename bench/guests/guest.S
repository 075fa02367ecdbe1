# The benchmark guest: one flat image, loaded and entered at 0x1000 in 64-bit mode, at CPL 3 (`user`, natively
# run on nested-PVM hosts) or CPL 0 (`long`, emulated there). Every VMM under test runs these same bytes:
# Swiftlet as `--raw IMAGE --raw-mode user|long`, the bare-C floor (bench/kvm-floor.c) likewise, QEMU through
# bench/guests/qemu-firmware.S, which reaches the same CPU state and copies this image to 0x1000.
#
# Assembled with `as --64 --defsym SCENARIO=n --defsym ITERATIONS=n`; SCENARIO picks the workload:
#   0 startup      'S' on COM1 as the very first instruction, then reset
#   1 pio          ITERATIONS `out` to port 0x99, which no device claims
#   2 pio-device   ITERATIONS `out` to port 0x3ff, COM1's scratch register (a device handles it)
#   3 mmio         ITERATIONS 32-bit stores to 0xd0000000, an address in the MMIO hole nothing claims
#   4 idle         'S', then spin without exits until killed (memory overhead is read meanwhile)
#   5 restore      'S', one store into each of ITERATIONS pages from 2 MiB on (the same pages whatever the RAM
#                  size), 'R', then 'c' on COM1 forever, one `out` after another: saved at any moment, the guest's
#                  next instruction after a restore is at most one `jmp` away from a console byte
# Markers: 'S' (0x53) before the loop and 'E' (0x45) after it, both on COM1 (0x3f8), so the harness times the
# loop from the moments the bytes reach it. The end is 0xFE written to port 0x64: the i8042's "pulse reset
# line" command, which Swiftlet and the floor turn into a clean exit and QEMU's isa-debug-exit (placed on
# port 0x64 for this) turns into process exit.
        .text
        .globl _start
_start:
        .code64
        mov     $0x3f8, %dx
        mov     $'S', %al
        out     %al, (%dx)
.if SCENARIO == 1
        mov     $ITERATIONS, %ecx
        mov     $0x99, %dx
1:      out     %al, (%dx)
        dec     %ecx
        jnz     1b
.elseif SCENARIO == 2
        mov     $ITERATIONS, %ecx
        mov     $0x3ff, %dx
1:      out     %al, (%dx)
        dec     %ecx
        jnz     1b
.elseif SCENARIO == 3
        mov     $ITERATIONS, %ecx
        mov     $0xd0000000, %ebx       # zero-extended into %rbx
1:      mov     %eax, (%rbx)
        dec     %ecx
        jnz     1b
.elseif SCENARIO == 4
1:      jmp     1b
.elseif SCENARIO == 5
        mov     $0x200000, %rbx
        mov     $ITERATIONS, %ecx
1:      mov     %rcx, (%rbx)            # a non-zero quadword: the page is written to the memory file
        add     $0x1000, %rbx
        dec     %ecx
        jnz     1b
        mov     $'R', %al
        out     %al, (%dx)
        mov     $'c', %al
3:      out     %al, (%dx)
        jmp     3b
.endif
.if SCENARIO != 0
        mov     $0x3f8, %dx
        mov     $'E', %al
        out     %al, (%dx)
.endif
        mov     $0xfe, %al
        out     %al, $0x64
2:      jmp     2b                      # not reached: the reset ends the VM
