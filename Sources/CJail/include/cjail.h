// The Linux calls the jailer makes that Swift's Glibc module does not import (pivot_root has no glibc wrapper;
// unshare, setns and the CLONE_NEW* flags need _GNU_SOURCE; makedev is a macro). Each returns 0 or -errno.
#ifndef CJAIL_H
#define CJAIL_H

#include <stdint.h>
#include <sys/types.h>

int cjail_unshare_mount_namespace(void);
int cjail_unshare_pid_namespace(void);
/// Joins the network namespace at `path` (e.g. /var/run/netns/NAME).
int cjail_join_network_namespace(const char *path);
/// mount --make-rslave /: our mounts stop propagating to the host's namespace (and the host's still reach us).
int cjail_make_root_slave(void);
/// Bind-mounts `path` onto itself, so that it is a mount point pivot_root accepts.
int cjail_bind_onto_itself(const char *path);
/// chdir(new_root); pivot_root(".", put_old); chdir("/"); umount2(put_old, MNT_DETACH); rmdir(put_old).
int cjail_pivot_root(const char *new_root, const char *put_old);
/// Where pivot_root cannot work (the host's root is the initial ramfs, which can be neither unmounted nor
/// pivoted away from): chdir(new_root); mount --move new_root /; chroot("."); chdir("/"). runc's --no-pivot.
int cjail_move_root(const char *new_root);
/// A procfs at `path` (nosuid, nodev, noexec, hidepid=2: an unprivileged process sees only its own processes).
int cjail_mount_proc(const char *path);
/// mknod(path, S_IFCHR | mode, makedev(major, minor)).
int cjail_make_char_device(const char *path, uint32_t mode, uint32_t major, uint32_t minor);
/// setgroups(0, NULL), setgid(gid), setuid(uid), in that order (after setuid the others would be refused).
int cjail_drop_privileges(uid_t uid, gid_t gid);
/// fork(); in the child returns 0, in the parent the child's pid; -errno on failure. Called before any thread exists.
pid_t cjail_fork(void);
/// setsid() for --daemonize.
int cjail_new_session(void);

#endif
