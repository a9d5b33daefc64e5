/* forkbomb: run inside a container by the fault tests. Every process forks in a loop and
 * keeps trying when fork fails (EAGAIN at pids.max), so the container stays full of
 * processes that each fork the moment a slot frees: killing them one by one never catches
 * up. SIGCHLD is ignored, so a killed process is reaped at once and its slot is free for
 * a sibling's fork at once (a zombie would hold it until its parent died). Bounded: every
 * process exits after MAX_S seconds (argument, default 60), so a runtime that fails to end
 * it does not leave it running for ever.
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    time_t end = time(NULL) + (argc > 1 ? atol(argv[1]) : 60);
    signal(SIGCHLD, SIG_IGN);
    while (time(NULL) < end)
        fork();
    return 0;
}
