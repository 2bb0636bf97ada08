/* The plugin. */
const char *greet(void) { return "hello from a plugin"; }
