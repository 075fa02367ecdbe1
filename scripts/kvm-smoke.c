// kvm-smoke: the smallest proof that /dev/kvm runs guest code. Used by scripts/test-testhost inside the test host.
//
// It creates a VM with one page of guest memory at guest-physical 0x1000 and one vCPU in real mode (the state
// KVM_CREATE_VCPU leaves it in, reset-like), points CS:IP at that page and runs this 16-bit code:
//
//     mov dx, 0x3f8    ; COM1's data port
//     add al, bl       ; al = 2 + 2, set through KVM_SET_REGS
//     add al, '0'      ; as an ASCII digit
//     out dx, al       ; -> KVM_EXIT_IO, port 0x3f8, one byte: '4'
//     mov al, 10
//     out dx, al       ; -> KVM_EXIT_IO: '\n'
//     hlt              ; -> KVM_EXIT_HLT (no in-kernel irqchip, so HLT comes out to user space)
//
// Every exit is printed; the program exits 0 when it saw "4\n" on the port and then the HLT.
//
//   gcc -O2 -Wall -o kvm-smoke scripts/kvm-smoke.c && ./kvm-smoke
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUEST_CODE_ADDRESS 0x1000
#define GUEST_MEMORY_SIZE 0x1000

static void fail(const char *what) {
    fprintf(stderr, "kvm-smoke: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(void) {
    static const uint8_t code[] = {
        0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0x00, 0xd8,       // add al, bl
        0x04, '0',        // add al, '0'
        0xee,             // out dx, al
        0xb0, '\n',       // mov al, '\n'
        0xee,             // out dx, al
        0xf4,             // hlt
    };

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) fail("open /dev/kvm");
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    // Which KVM this is: kvm_amd / kvm_intel on hardware virtualization, kvm_pvm on this project's machines.
    const char *flavour = access("/sys/module/kvm_amd", F_OK) == 0     ? "kvm_amd"
                          : access("/sys/module/kvm_intel", F_OK) == 0 ? "kvm_intel"
                          : access("/sys/module/kvm_pvm", F_OK) == 0   ? "kvm_pvm"
                                                                         : "unknown module";
    printf("kvm-smoke: KVM API version %d (%s)\n", api, flavour);
    if (api != KVM_API_VERSION) {
        fprintf(stderr, "kvm-smoke: expected API version %d\n", KVM_API_VERSION);
        return 1;
    }

    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) fail("KVM_CREATE_VM");

    uint8_t *memory = mmap(NULL, GUEST_MEMORY_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) fail("mmap guest memory");
    memcpy(memory, code, sizeof code);
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = GUEST_CODE_ADDRESS,
        .memory_size = GUEST_MEMORY_SIZE,
        .userspace_addr = (uint64_t)(uintptr_t)memory,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) fail("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run)) fail("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) fail("mmap kvm_run");

    // Real mode: the code segment's base is selector * 16; with both 0, IP is the physical address.
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) fail("KVM_SET_SREGS");
    struct kvm_regs regs = {
        .rip = GUEST_CODE_ADDRESS,
        .rax = 2,
        .rbx = 2,
        .rflags = 0x2, // bit 1 is reserved and must be set
    };
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) fail("KVM_SET_REGS");

    char seen[16] = {0};
    size_t seen_length = 0;
    for (int exits = 0; exits < 16; exits++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) fail("KVM_RUN");
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t byte = *((uint8_t *)run + run->io.data_offset);
            printf("kvm-smoke: exit IO %s port 0x%x size %d value 0x%02x\n",
                   run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.port, run->io.size, byte);
            if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0x3f8 && seen_length < sizeof seen - 1)
                seen[seen_length++] = (char)byte;
            break;
        }
        case KVM_EXIT_HLT:
            printf("kvm-smoke: exit HLT\n");
            if (strcmp(seen, "4\n") == 0) {
                printf("kvm-smoke: OK: the guest computed 2 + 2 and wrote \"4\\n\" to port 0x3f8\n");
                return 0;
            }
            fprintf(stderr, "kvm-smoke: the guest wrote \"%s\", expected \"4\\n\"\n", seen);
            return 1;
        case KVM_EXIT_FAIL_ENTRY:
            fprintf(stderr, "kvm-smoke: exit FAIL_ENTRY, reason 0x%llx\n",
                    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            return 1;
        case KVM_EXIT_INTERNAL_ERROR:
            fprintf(stderr, "kvm-smoke: exit INTERNAL_ERROR, suberror %u\n", run->internal.suberror);
            return 1;
        default:
            fprintf(stderr, "kvm-smoke: unexpected exit reason %u\n", run->exit_reason);
            return 1;
        }
    }
    fprintf(stderr, "kvm-smoke: no HLT after 16 exits\n");
    return 1;
}
