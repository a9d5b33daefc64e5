/* forkbomb: run inside a container by the fault tests. Every process forks in a loop and
 * keeps trying when fork fails (EAGAIN at pids.max), so the container stays full of
 * processes that each fork the moment a slot frees: killing them one by one never catches
 * up. Bounded: every process exits after MAX_S seconds (argument, default 60), so a runtime
 * that fails to end it does not leave it running for ever.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    time_t end = time(NULL) + (argc > 1 ? atol(argv[1]) : 60);
    while (time(NULL) < end)
        fork();
    return 0;
}
