// CKVM: <linux/kvm.h> for Swift, plus fixed-arity ioctl helpers.
//
// Swift cannot call the variadic ioctl(2) directly, and the _IO/_IOW request macros are not importable, so this
// header re-exports the request numbers as constants and binds ioctl through fixed signatures (as swift-nio does).
// Nothing else belongs here: all policy lives in the Swift KVM module.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <stdint.h>

static inline int ckvm_ioctl_none(int fd, unsigned long request) { return ioctl(fd, request, 0); }
static inline int ckvm_ioctl_value(int fd, unsigned long request, unsigned long value) { return ioctl(fd, request, value); }
static inline int ckvm_ioctl_pointer(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }

// System ioctls
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CKVM_GET_MSR_INDEX_LIST = KVM_GET_MSR_INDEX_LIST;

// VM ioctls
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long CKVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long CKVM_IRQFD = KVM_IRQFD;
static const unsigned long CKVM_IOEVENTFD = KVM_IOEVENTFD;
static const unsigned long CKVM_SET_GSI_ROUTING = KVM_SET_GSI_ROUTING;
static const unsigned long CKVM_GET_CLOCK = KVM_GET_CLOCK;
static const unsigned long CKVM_SET_CLOCK = KVM_SET_CLOCK;
static const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;
// VM state for snapshots
static const unsigned long CKVM_GET_IRQCHIP = KVM_GET_IRQCHIP;
static const unsigned long CKVM_SET_IRQCHIP = KVM_SET_IRQCHIP;
static const unsigned long CKVM_GET_PIT2 = KVM_GET_PIT2;
static const unsigned long CKVM_SET_PIT2 = KVM_SET_PIT2;

// vCPU ioctls
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_GET_FPU = KVM_GET_FPU;
static const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_GET_VCPU_EVENTS = KVM_GET_VCPU_EVENTS;
static const unsigned long CKVM_SET_VCPU_EVENTS = KVM_SET_VCPU_EVENTS;
static const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;
static const unsigned long CKVM_TRANSLATE = KVM_TRANSLATE;
static const unsigned long CKVM_SET_GUEST_DEBUG = KVM_SET_GUEST_DEBUG;
// vCPU state for snapshots
static const unsigned long CKVM_GET_CPUID2 = KVM_GET_CPUID2;
static const unsigned long CKVM_GET_XSAVE = KVM_GET_XSAVE;
static const unsigned long CKVM_SET_XSAVE = KVM_SET_XSAVE;
static const unsigned long CKVM_GET_XCRS = KVM_GET_XCRS;
static const unsigned long CKVM_SET_XCRS = KVM_SET_XCRS;
static const unsigned long CKVM_GET_DEBUGREGS = KVM_GET_DEBUGREGS;
static const unsigned long CKVM_SET_DEBUGREGS = KVM_SET_DEBUGREGS;
static const unsigned long CKVM_GET_TSC_KHZ = KVM_GET_TSC_KHZ;
static const unsigned long CKVM_SET_TSC_KHZ = KVM_SET_TSC_KHZ;

// struct kvm_cpuid2 and struct kvm_msrs end in flexible arrays, which Swift cannot size. These fixed-capacity
// twins repeat the header fields and have the same layout for the first N entries; the kernel reads `nent` and never looks past it.
#define CKVM_MAX_CPUID_ENTRIES 256
struct ckvm_cpuid {
    __u32 nent;
    __u32 padding;
    struct kvm_cpuid_entry2 entries[CKVM_MAX_CPUID_ENTRIES];
};

#define CKVM_MAX_MSR_ENTRIES 64
struct ckvm_msrs {
    __u32 nmsrs;
    __u32 pad;
    struct kvm_msr_entry entries[CKVM_MAX_MSR_ENTRIES];
};

#define CKVM_MAX_MSR_INDICES 1024
struct ckvm_msr_list {
    __u32 nmsrs;
    uint32_t indices[CKVM_MAX_MSR_INDICES];
};

#define CKVM_MAX_IRQ_ROUTES 1024
struct ckvm_irq_routing {
    __u32 nr;
    __u32 flags;
    struct kvm_irq_routing_entry entries[CKVM_MAX_IRQ_ROUTES];
};

// KVM_GET_DIRTY_LOG for one memory slot into `bitmap` (one bit per page of the slot, in 64-bit words): the
// struct's pointer sits in an anonymous union, which Swift imports awkwardly. Returns ioctl's result.
static const unsigned long CKVM_MEM_LOG_DIRTY_PAGES = KVM_MEM_LOG_DIRTY_PAGES;
static inline int ckvm_get_dirty_log(int fd, __u32 slot, __u64 *bitmap) {
    struct kvm_dirty_log log = { .slot = slot };
    log.dirty_bitmap = bitmap;
    return ioctl(fd, KVM_GET_DIRTY_LOG, &log);
}

// Access to the kvm_run union members by name (Swift imports anonymous unions awkwardly).
static inline struct kvm_run *ckvm_run(void *page) { return (struct kvm_run *)page; }

#endif
