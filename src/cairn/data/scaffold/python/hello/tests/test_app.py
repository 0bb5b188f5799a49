import unittest

from app import greeting


class GreetingTest(unittest.TestCase):
    def test_greeting_names_the_project(self) -> None:
        self.assertEqual(greeting(), "hello from @@PROJECT@@")


if __name__ == "__main__":
    unittest.main()
