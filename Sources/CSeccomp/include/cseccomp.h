// libseccomp, plus what Swift cannot do itself: a SIGSYS handler that is async-signal-safe and names the refused
// system call, and the per-thread label it prints. Nothing else.
#ifndef CSECCOMP_H
#define CSECCOMP_H

#include <seccomp.h>
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

#endif
