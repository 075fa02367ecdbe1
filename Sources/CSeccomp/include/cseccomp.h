// libseccomp, plus what Swift cannot do itself: a SIGSYS handler that is async-signal-safe and names the refused
// system call, and the per-thread label it prints. Nothing else.
#ifndef CSECCOMP_H
#define CSECCOMP_H

#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

/// Labels the calling thread for the violation message ("vcpu", "devices", ...). `label` must outlive the thread
/// (pass a string literal or a leaked copy): the SIGSYS handler reads it without taking a lock.
void cseccomp_set_thread_label(const char *label);

/// Installs the SIGSYS handler used with SCMP_ACT_TRAP: it writes one line naming the thread kind, the system call
/// and its number to stderr with write(2), then ends the process with exit_group(128 + SIGSYS). The names come
/// from a table compiled in from <asm/unistd_64.h> (scripts/gen-syscall-names). Idempotent.
/// Returns 0 or -errno.
int cseccomp_install_violation_reporter(void);

/// The terminal settings the SIGSYS handler puts back before it reports (ioctl TCSETS, async-signal-safe), for a
/// VMM that made its terminal raw; fd -1 forgets them. SIGSYS is the reporter's alone while filters are on, so the
/// raw terminal's own fatal-signal handler (Terminal.swift) leaves it out.
struct termios;
void cseccomp_remember_terminal(int fd, const struct termios *settings);

/// seccomp_rule_add_array with up to two argument comparisons passed by value (Swift cannot call the variadic
/// seccomp_rule_add, and building scmp_arg_cmp arrays across the boundary is clumsier than this).
/// `argc` is 0, 1 or 2. Returns 0 or -errno, as libseccomp does.
int cseccomp_rule_add(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int argc,
                      unsigned int arg0_index, int arg0_op, uint64_t arg0_value, uint64_t arg0_value2,
                      unsigned int arg1_index, int arg1_op, uint64_t arg1_value, uint64_t arg1_value2);

/// The action values of the libseccomp macros that Swift does not import (they are function-like or casts).
uint32_t cseccomp_act_allow(void);
uint32_t cseccomp_act_trap(void);
uint32_t cseccomp_act_kill_process(void);
uint32_t cseccomp_act_errno(uint16_t error);

/// SCMP_CMP_* as plain ints (Swift imports the enum, but its spelling differs between Swift versions).
int cseccomp_cmp_eq(void);
int cseccomp_cmp_ne(void);
int cseccomp_cmp_masked_eq(void);

/// The raw value of the seccomp mode the kernel reports for the calling thread (0 none, 2 filter), read with
/// prctl(PR_GET_SECCOMP). For tests and diagnostics.
int cseccomp_current_mode(void);

/// Runs syscall `number` with no meaningful arguments (a test makes a forbidden call on purpose).
long cseccomp_raw_syscall(long number);

/// The number of precompiled programs (seccomp_filters.inc): the union, then each thread kind, in
/// `SeccompPrecompiled.filters`' order; each for two actions (0 trap, 1 kill process).
int cseccomp_precompiled_filter_count(void);

/// Loads precompiled program `filter` for `action` on the calling thread, or with `all_threads` on every thread
/// (SECCOMP_FILTER_FLAG_TSYNC), after PR_SET_NO_NEW_PRIVS, as seccomp_load does. Returns 0, -errno, or with TSYNC
/// the id (> 0) of a thread whose filters are not an ancestor of the caller's.
long cseccomp_install_precompiled(int filter, int action, int all_threads);

/// 1 if precompiled program `filter`/`action` is exactly these bytes (struct sock_filter, as exported), else 0.
int cseccomp_precompiled_equals(int filter, int action, const uint8_t *bytes, size_t length);

/// seccomp_export_bpf into `buffer` (through a memfd: libseccomp 2.5 exports only to a file descriptor).
/// Returns the program's length in bytes, or -errno (-ENOSPC if it does not fit).
int cseccomp_export_bpf(scmp_filter_ctx ctx, uint8_t *buffer, size_t capacity);

#endif
