const char *greeting(void) { return "hello from /usr/local"; }
