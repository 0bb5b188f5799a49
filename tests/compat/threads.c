/* Starts a thread and looks a name up: what musl does differently from glibc. */
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>

static void *work(void *arg) { return arg; }

int main(int argc, char **argv) {
    pthread_t t;
    struct addrinfo *res;
    pthread_create(&t, NULL, work, NULL);
    pthread_join(t, NULL);
    if (argc > 1 && getaddrinfo(argv[1], NULL, NULL, &res) == 0) freeaddrinfo(res);
    puts("hello");
    return 0;
}
