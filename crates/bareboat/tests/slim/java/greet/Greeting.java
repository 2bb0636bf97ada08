package greet;

/** A library jar, found only through the application jar's Class-Path. */
public class Greeting {
    public static String of(String who) {
        return "hello from " + who;
    }
}
