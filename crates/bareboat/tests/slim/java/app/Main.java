package app;

/** A jar whose manifest puts greet.jar on the class path. */
public class Main {
    public static void main(String[] args) {
        System.out.println(greet.Greeting.of("Java") + " " + System.getProperty("file.encoding"));
    }
}
