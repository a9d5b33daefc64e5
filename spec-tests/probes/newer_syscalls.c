/* Calls an old and some newer system calls directly and prints the errno of each as
 * "name=ERRNO" lines, for the seccomp ENOSYS-stub test. Built static: the test rootfs has
 * no libc. Makes no call that changes anything: every call fails on its arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void probe(const char *name, long nr, long a, long b, long c, long d) {
    long r = syscall(nr, a, b, c, d);
    printf("%s=%s\n", name, r == -1 ? strerrorname_np(errno) : "OK");
}

int main(void) {
    /* mkdirat on an invalid dirfd: EBADF when allowed. */
    probe("mkdirat", SYS_mkdirat, -42, (long)"x", 0700, 0);
    /* openat2 with a zero-sized how: EINVAL when allowed. */
    probe("openat2", 437, -42, (long)"x", 0, 0);
    /* faccessat2 on an invalid dirfd. */
    probe("faccessat2", 439, -42, (long)"x", 0, 0);
    /* close_range with first > last: EINVAL when allowed. */
    probe("close_range", 436, 10, 5, 0, 0);
    fflush(stdout);
    return 0;
}
