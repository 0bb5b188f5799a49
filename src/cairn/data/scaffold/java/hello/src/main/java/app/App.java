package app;

/** @@PROJECT@@: the starting point cairn init writes. */
public final class App {
  private App() {}

  /** What @@PROJECT@@ prints. */
  public static String greeting() {
    return "hello from @@PROJECT@@";
  }

  public static void main(String[] args) {
    System.out.println(greeting());
  }
}
