/* A runtime built from source into /usr/local: a program and its library. */
const char *greeting(void);
#include <stdio.h>

int main(void) {
    printf("%s\n", greeting());
    return 0;
}
