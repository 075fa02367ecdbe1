// AUDITED UNSAFE FILE: a signal handler reading a fixed table and a thread-local pointer; libseccomp calls; loading
// the precompiled programs (fixed tables) with seccomp(2).
#define _GNU_SOURCE
#include "cseccomp.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

// x86-64 syscall numbers stop below 512 (the x32 range starts at 512 and is never allowed here). The names are
// compiled in (syscall_names.inc, from <asm/unistd_64.h>): the handler reads a constant table, and no VM start
// spends time asking libseccomp for them.
#define NAME_TABLE_SIZE 512
#define SYSCALL_NAME(name) [__NR_##name] = #name,
static const char *const syscall_names[NAME_TABLE_SIZE] = {
#include "syscall_names.inc"
};
#undef SYSCALL_NAME
static atomic_int reporter_installed;
static __thread const char *thread_label;

static volatile int terminal_fd = -1;
static struct termios terminal_settings;

void cseccomp_set_thread_label(const char *label) { thread_label = label; }

void cseccomp_remember_terminal(int fd, const struct termios *settings) {
    terminal_fd = -1;
    if (settings != NULL) terminal_settings = *settings;
    terminal_fd = fd;
}

// Only write(2) and exit_group(2) are made here: every filter allows both, so the report itself is never refused.
// A SIGSYS raised inside the handler (SIGSYS is blocked while it runs) makes the kernel kill the process anyway.
static void append(char *buffer, size_t *used, size_t capacity, const char *text) {
    while (*text != '\0' && *used < capacity) buffer[(*used)++] = *text++;
}

static void append_decimal(char *buffer, size_t *used, size_t capacity, long value) {
    char digits[24];
    size_t count = 0;
    unsigned long magnitude = value < 0 ? (unsigned long)(-value) : (unsigned long)value;
    do { digits[count++] = (char)('0' + magnitude % 10); magnitude /= 10; } while (magnitude != 0 && count < sizeof digits);
    if (value < 0) append(buffer, used, capacity, "-");
    while (count > 0 && *used < capacity) buffer[(*used)++] = digits[--count];
}

static void report_violation(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)context;
    char line[256];
    size_t used = 0;
    int number = info->si_syscall;
    const char *name = (number >= 0 && number < NAME_TABLE_SIZE) ? syscall_names[number] : NULL;
    if (terminal_fd >= 0) (void)syscall(SYS_ioctl, terminal_fd, TCSETS, &terminal_settings);
    append(line, &used, sizeof line, "swiftlet: seccomp: the ");
    append(line, &used, sizeof line, thread_label ? thread_label : "unlabelled");
    append(line, &used, sizeof line, " thread made system call ");
    append(line, &used, sizeof line, name ? name : "?");
    append(line, &used, sizeof line, " (");
    append_decimal(line, &used, sizeof line, number);
    append(line, &used, sizeof line, "), which its filter does not allow; stopping the VMM\n");
    // SAFETY: a raw write of our own stack buffer; the result does not matter (stderr may be closed).
    (void)syscall(SYS_write, STDERR_FILENO, line, used);
    syscall(SYS_exit_group, 128 + SIGSYS);
}

int cseccomp_install_violation_reporter(void) {
    if (atomic_exchange(&reporter_installed, 1) == 1) return 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = report_violation;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSYS, &action, NULL) != 0) {
        atomic_store(&reporter_installed, 0);
        return -errno;
    }
    return 0;
}

int cseccomp_rule_add(scmp_filter_ctx ctx, uint32_t action, int syscall_number, unsigned int argc,
                      unsigned int arg0_index, int arg0_op, uint64_t arg0_value, uint64_t arg0_value2,
                      unsigned int arg1_index, int arg1_op, uint64_t arg1_value, uint64_t arg1_value2) {
    struct scmp_arg_cmp comparisons[2] = {
        { .arg = arg0_index, .op = (enum scmp_compare)arg0_op, .datum_a = arg0_value, .datum_b = arg0_value2 },
        { .arg = arg1_index, .op = (enum scmp_compare)arg1_op, .datum_a = arg1_value, .datum_b = arg1_value2 },
    };
    if (argc > 2) return -EINVAL;
    return seccomp_rule_add_array(ctx, action, syscall_number, argc, comparisons);
}

uint32_t cseccomp_act_allow(void) { return SCMP_ACT_ALLOW; }
uint32_t cseccomp_act_trap(void) { return SCMP_ACT_TRAP; }
uint32_t cseccomp_act_kill_process(void) { return SCMP_ACT_KILL_PROCESS; }
uint32_t cseccomp_act_errno(uint16_t error) { return SCMP_ACT_ERRNO(error); }

int cseccomp_cmp_eq(void) { return SCMP_CMP_EQ; }
int cseccomp_cmp_ne(void) { return SCMP_CMP_NE; }
int cseccomp_cmp_masked_eq(void) { return SCMP_CMP_MASKED_EQ; }

int cseccomp_current_mode(void) { return prctl(PR_GET_SECCOMP, 0, 0, 0, 0); }

long cseccomp_raw_syscall(long number) { return syscall(number, 0, 0, 0, 0, 0, 0); }

// The policy's programs, compiled by libseccomp when seccomp_filters.inc was generated (scripts/gen-seccomp-filters)
// and checked against a fresh compilation by the unit tests: a VM's start loads them instead of compiling.
struct precompiled_program {
    const struct sock_filter *instructions;
    unsigned short count;
};
#include "seccomp_filters.inc"

int cseccomp_precompiled_filter_count(void) { return CSECCOMP_FILTER_COUNT; }

long cseccomp_install_precompiled(int filter, int action, int all_threads) {
    if (filter < 0 || filter >= CSECCOMP_FILTER_COUNT || action < 0 || action > 1) return -EINVAL;
    const struct precompiled_program *program = &precompiled_programs[filter][action];
    // What libseccomp's seccomp_load does with its default attributes: no_new_privs, then seccomp(2), with TSYNC
    // when every thread is to get the filter.
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    // SAFETY: the kernel only reads the program (it copies it in); the cast drops const for struct sock_fprog.
    struct sock_fprog fprog = { .len = program->count, .filter = (struct sock_filter *)program->instructions };
    long result = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, all_threads ? SECCOMP_FILTER_FLAG_TSYNC : 0, &fprog);
    return result < 0 ? -errno : result;
}

int cseccomp_precompiled_equals(int filter, int action, const uint8_t *bytes, size_t length) {
    if (filter < 0 || filter >= CSECCOMP_FILTER_COUNT || action < 0 || action > 1) return 0;
    const struct precompiled_program *program = &precompiled_programs[filter][action];
    if (length != (size_t)program->count * sizeof(struct sock_filter)) return 0;
    return memcmp(program->instructions, bytes, length) == 0;
}

int cseccomp_export_bpf(scmp_filter_ctx ctx, uint8_t *buffer, size_t capacity) {
    int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    int result = seccomp_export_bpf(ctx, fd);
    if (result < 0) {
        close(fd);
        return result;
    }
    off_t length = lseek(fd, 0, SEEK_END);
    if (length < 0 || (size_t)length > capacity) {
        result = length < 0 ? -errno : -ENOSPC;
        close(fd);
        return result;
    }
    ssize_t read_bytes = pread(fd, buffer, (size_t)length, 0);
    close(fd);
    return read_bytes == length ? (int)length : -EIO;
}
