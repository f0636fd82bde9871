#define _GNU_SOURCE
#include "csvirt.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif
#ifndef __NR_openat2
#define __NR_openat2 437
#endif
#define SVIRT_RESOLVE_NO_MAGICLINKS 0x02
#define SVIRT_RESOLVE_NO_SYMLINKS 0x04
#define SVIRT_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define SVIRT_KVM_GET_API_VERSION 0xAE00

ssize_t svirt_getxattr(const char *path, const char *name, void *value, size_t size, int follow) {
    return follow ? getxattr(path, name, value, size) : lgetxattr(path, name, value, size);
}

int svirt_setxattr(const char *path, const char *name, const void *value, size_t size, int flags, int follow) {
    return follow ? setxattr(path, name, value, size, flags) : lsetxattr(path, name, value, size, flags);
}

int svirt_removexattr(const char *path, const char *name, int follow) {
    return follow ? removexattr(path, name) : lremovexattr(path, name);
}

ssize_t svirt_listxattr(const char *path, char *list, size_t size, int follow) {
    return follow ? listxattr(path, list, size) : llistxattr(path, list, size);
}

ssize_t svirt_fgetxattr(int fd, const char *name, void *value, size_t size) {
    return fgetxattr(fd, name, value, size);
}

int svirt_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags) {
    return fsetxattr(fd, name, value, size, flags);
}

int svirt_fremovexattr(int fd, const char *name) { return fremovexattr(fd, name); }

ssize_t svirt_flistxattr(int fd, char *list, size_t size) { return flistxattr(fd, list, size); }

int svirt_xattr_create_flag(void) { return XATTR_CREATE; }
int svirt_xattr_replace_flag(void) { return XATTR_REPLACE; }

struct svirt_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

int svirt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct svirt_open_how how = {flags, mode, resolve};
    return (int)syscall(__NR_openat2, dirfd, path, &how, sizeof how);
}

uint64_t svirt_resolve_no_symlinks(void) { return SVIRT_RESOLVE_NO_SYMLINKS | SVIRT_RESOLVE_NO_MAGICLINKS; }

int svirt_o_path(void) { return O_PATH; }

long long svirt_fstatfs_type(int fd) {
    struct statfs s;
    if (fstatfs(fd, &s) != 0) return -1;
    return (long long)(unsigned long)s.f_type;
}

int svirt_fchown_path_fd(int fd, unsigned int uid, unsigned int gid) {
    return fchownat(fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH);
}

int svirt_landlock_abi_version(void) {
    return (int)syscall(__NR_landlock_create_ruleset, NULL, 0, SVIRT_LANDLOCK_CREATE_RULESET_VERSION);
}

int svirt_landlock_create_ruleset(const void *attr, size_t size, uint32_t flags) {
    return (int)syscall(__NR_landlock_create_ruleset, attr, size, flags);
}

int svirt_landlock_add_rule(int ruleset_fd, int rule_type, const void *rule_attr, uint32_t flags) {
    return (int)syscall(__NR_landlock_add_rule, ruleset_fd, rule_type, rule_attr, flags);
}

int svirt_landlock_restrict_self(int ruleset_fd, uint32_t flags) {
    return (int)syscall(__NR_landlock_restrict_self, ruleset_fd, flags);
}

int svirt_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }
int svirt_get_no_new_privs(void) { return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); }

int svirt_kvm_api_version(int fd) { return ioctl(fd, SVIRT_KVM_GET_API_VERSION, 0); }

int svirt_open_as(const char *path, uid_t uid, gid_t gid, const gid_t *groups, size_t group_count, int kvm) {
    // The child reports over its exit status: 0..127 an API version or 0, 128 + errno (capped) a failure.
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        if (setgroups(group_count, groups) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
            _exit(128 + (errno < 127 ? errno : 127));
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) _exit(128 + (errno < 127 ? errno : 127));
        if (!kvm) _exit(0);
        int v = ioctl(fd, SVIRT_KVM_GET_API_VERSION, 0);
        if (v < 0) _exit(128 + (errno < 127 ? errno : 127));
        _exit(v > 127 ? 127 : v);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -errno;
    }
    if (!WIFEXITED(status)) return -ECHILD;
    int code = WEXITSTATUS(status);
    return code >= 128 ? -(code - 128) : code;
}

// Swift's runtime on Linux reads a program's arguments from /proc/self/cmdline, which a process confined by
// Landlock (the stand-in guest, `svirt __guest`) may not open. glibc passes argc and argv to constructors, so
// hand them to the runtime before any Swift code asks. The symbol is weak: without it nothing changes.
extern void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) __attribute__((weak));

__attribute__((constructor)) static void svirt_capture_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    if (_swift_stdlib_overrideUnsafeArgvArgc && argv && argc > 0) _swift_stdlib_overrideUnsafeArgvArgc(argv, argc);
}

int svirt_file_handle(int fd, unsigned char *handle, size_t capacity, size_t *length, int *type, int *mount_id) {
    struct file_handle *fh = malloc(sizeof(struct file_handle) + MAX_HANDLE_SZ);
    if (!fh) { errno = ENOMEM; return -1; }
    fh->handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(fd, "", fh, mount_id, AT_EMPTY_PATH) != 0) {
        int e = errno;
        free(fh);
        errno = e;
        return -1;
    }
    if (fh->handle_bytes > capacity) { free(fh); errno = EOVERFLOW; return -1; }
    memcpy(handle, fh->f_handle, fh->handle_bytes);
    *length = fh->handle_bytes;
    *type = fh->handle_type;
    free(fh);
    return 0;
}

int svirt_open_by_handle(int mount_fd, const unsigned char *handle, size_t length, int type, int flags) {
    if (length > MAX_HANDLE_SZ) { errno = EINVAL; return -1; }
    struct file_handle *fh = malloc(sizeof(struct file_handle) + MAX_HANDLE_SZ);
    if (!fh) { errno = ENOMEM; return -1; }
    fh->handle_bytes = (unsigned int)length;
    fh->handle_type = type;
    memcpy(fh->f_handle, handle, length);
    int fd = open_by_handle_at(mount_fd, fh, flags);
    int e = errno;
    free(fh);
    errno = e;
    return fd;
}
