/* A program that loads a plugin by name at run time, which no ELF header names. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--plugin") == 0) {
        void *plugin = dlopen("libgreetplugin.so", RTLD_NOW);
        if (!plugin) {
            fprintf(stderr, "%s\n", dlerror());
            return 3;
        }
        const char *(*greet)(void) = (const char *(*)(void))dlsym(plugin, "greet");
        printf("%s\n", greet());
        return 0;
    }
    printf("hello from C\n");
    return 0;
}
