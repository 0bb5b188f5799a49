package app;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class AppTest {
  @Test
  void greetingNamesTheProject() {
    assertEquals("hello from @@PROJECT@@", App.greeting());
  }
}
