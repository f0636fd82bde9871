#ifndef CSVIRT_H
#define CSVIRT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// Thin wrappers over Linux calls that Swift cannot reach: <sys/xattr.h> is not in Glibc's Swift module, and
// variadic functions (syscall, prctl, ioctl) cannot be called from Swift. Each returns what the C call returns
// (-1 with errno set on failure) unless said otherwise. Nothing here keeps state.

// Extended attributes. `follow` = 0 acts on a symlink itself (the l* calls).
ssize_t svirt_getxattr(const char *path, const char *name, void *value, size_t size, int follow);
int svirt_setxattr(const char *path, const char *name, const void *value, size_t size, int flags, int follow);
int svirt_removexattr(const char *path, const char *name, int follow);
ssize_t svirt_listxattr(const char *path, char *list, size_t size, int follow);
ssize_t svirt_fgetxattr(int fd, const char *name, void *value, size_t size);
int svirt_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);
int svirt_fremovexattr(int fd, const char *name);
ssize_t svirt_flistxattr(int fd, char *list, size_t size);
// XATTR_CREATE / XATTR_REPLACE.
int svirt_xattr_create_flag(void);
int svirt_xattr_replace_flag(void);

// openat2(2) with struct open_how {flags, mode, resolve}. -1 with errno (ENOSYS before Linux 5.6).
int svirt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, and O_PATH.
uint64_t svirt_resolve_no_symlinks(void);
int svirt_o_path(void);

// fstatfs(fd)->f_type: the filesystem's magic number, or -1 with errno.
long long svirt_fstatfs_type(int fd);

// Landlock. The ABI version, or -1 with errno (ENOSYS: not built, EOPNOTSUPP: disabled at boot).
int svirt_landlock_abi_version(void);
int svirt_landlock_create_ruleset(const void *attr, size_t size, uint32_t flags);
int svirt_landlock_add_rule(int ruleset_fd, int rule_type, const void *rule_attr, uint32_t flags);
int svirt_landlock_restrict_self(int ruleset_fd, uint32_t flags);

// prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).
int svirt_set_no_new_privs(void);
// prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0).
int svirt_get_no_new_privs(void);

// ioctl(fd, KVM_GET_API_VERSION, 0): 12 on every kernel with a usable KVM.
int svirt_kvm_api_version(int fd);

#endif
