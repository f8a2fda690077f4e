// Keel's only C: linux/kvm.h request numbers under their kernel names, two ioctl wrappers
// (glibc's ioctl is variadic and unreachable from Swift), accessors for flexible array members,
// and the vCPU kick signal handler (which must be C: it touches a thread-local kvm_run).
#pragma once
#include <linux/kvm.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CKVM_REQ(name) static const unsigned long CKVM_##name __attribute__((swift_name(#name))) = name;

CKVM_REQ(KVM_GET_API_VERSION)
CKVM_REQ(KVM_CREATE_VM)
CKVM_REQ(KVM_CHECK_EXTENSION)
CKVM_REQ(KVM_GET_VCPU_MMAP_SIZE)
CKVM_REQ(KVM_GET_SUPPORTED_CPUID)
CKVM_REQ(KVM_GET_MSR_INDEX_LIST)
CKVM_REQ(KVM_CREATE_VCPU)
CKVM_REQ(KVM_SET_USER_MEMORY_REGION)
CKVM_REQ(KVM_SET_TSS_ADDR)
CKVM_REQ(KVM_SET_IDENTITY_MAP_ADDR)
CKVM_REQ(KVM_CREATE_IRQCHIP)
CKVM_REQ(KVM_CREATE_PIT2)
CKVM_REQ(KVM_IRQ_LINE)
CKVM_REQ(KVM_IRQFD)
CKVM_REQ(KVM_IOEVENTFD)
CKVM_REQ(KVM_SIGNAL_MSI)
CKVM_REQ(KVM_SET_GSI_ROUTING)
CKVM_REQ(KVM_ENABLE_CAP)
CKVM_REQ(KVM_X86_SET_MSR_FILTER)
CKVM_REQ(KVM_GET_TSC_KHZ)
CKVM_REQ(KVM_RUN)
CKVM_REQ(KVM_GET_REGS)
CKVM_REQ(KVM_SET_REGS)
CKVM_REQ(KVM_GET_SREGS)
CKVM_REQ(KVM_SET_SREGS)
CKVM_REQ(KVM_SET_CPUID2)
CKVM_REQ(KVM_SET_MSRS)
CKVM_REQ(KVM_GET_MSRS)
CKVM_REQ(KVM_GET_LAPIC)
CKVM_REQ(KVM_SET_LAPIC)
CKVM_REQ(KVM_GET_MP_STATE)
CKVM_REQ(KVM_SET_FPU)
CKVM_REQ(KVM_GET_FPU)

#define CKVM_FLAG(name, type) static const type CKVM_F_##name __attribute__((swift_name(#name))) = name;
CKVM_FLAG(KVM_IOEVENTFD_FLAG_PIO, uint32_t)
CKVM_FLAG(KVM_IOEVENTFD_FLAG_DATAMATCH, uint32_t)
CKVM_FLAG(KVM_IOEVENTFD_FLAG_DEASSIGN, uint32_t)
CKVM_FLAG(KVM_MSR_FILTER_READ, uint32_t)
CKVM_FLAG(KVM_MSR_FILTER_WRITE, uint32_t)
CKVM_FLAG(KVM_MSR_FILTER_DEFAULT_ALLOW, uint32_t)

/// ioctl with an integer argument.
static inline int ckvm_ioctl_value(int fd, unsigned long request, unsigned long value) {
    return ioctl(fd, request, value);
}

/// ioctl with a pointer argument.
static inline int ckvm_ioctl_pointer(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg);
}

/// The host's time-stamp counter (the guest's, minus KVM's TSC offset, without TSC scaling).
static inline uint64_t ckvm_rdtsc(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/// Deallocates a byte range of a file, keeping its size (fallocate PUNCH_HOLE | KEEP_SIZE);
/// glibc declares fallocate only with _GNU_SOURCE, which Swift's Glibc module lacks.
static inline int ckvm_punch_hole(int fd, int64_t offset, int64_t length) {
    return (int)syscall(SYS_fallocate, fd, 0x02 | 0x01, offset, length);
}

/// Atomically ORs `bits` into the byte at `p` and returns its old value (a locked `or`, so a
/// guest clearing other bits of the byte at the same moment loses nothing).
static inline uint8_t ckvm_atomic_or8(void *p, uint8_t bits) {
    return __atomic_fetch_or((uint8_t *)p, bits, __ATOMIC_SEQ_CST);
}

static inline struct kvm_cpuid_entry2 *ckvm_cpuid_entries(struct kvm_cpuid2 *c) { return c->entries; }
static inline struct kvm_msr_entry *ckvm_msr_entries(struct kvm_msrs *m) { return m->entries; }
static inline struct kvm_irq_routing_entry *ckvm_routing_entries(struct kvm_irq_routing *r) { return r->entries; }
static inline uint32_t *ckvm_msr_list_indices(struct kvm_msr_list *l) { return l->indices; }

/// Signal used to kick a vCPU thread out of KVM_RUN.
int ckvm_kick_signal(void);
/// Installs the kick handler (process-wide, idempotent).
int ckvm_install_kick_handler(void);
/// Called on a vCPU thread before its first KVM_RUN: registers that thread's kvm_run so the
/// kick handler can set immediate_exit, and unblocks the kick signal (test runners block it).
int ckvm_vcpu_thread_prepare(struct kvm_run *run);

/// Opens (creating it if needed) the TAP interface `name`, without packet-info headers,
/// non-blocking, with a 10-byte virtio-net header before every frame (IFF_VNET_HDR) and no
/// receive offloads yet. Returns the descriptor or -1 with errno set.
int ckvm_tap_open(const char *name);
/// TUNSETOFFLOAD: which offloads (TUN_F_CSUM 1, TUN_F_TSO4 2, TUN_F_TSO6 4) frames read from
/// the TAP may still need. Returns 0 or -1 with errno.
int ckvm_tap_set_offload(int fd, unsigned int flags);

/// Names the calling thread (pthread_setname_np needs _GNU_SOURCE, which Swift's Glibc lacks).
int ckvm_set_thread_name(const char *name);
