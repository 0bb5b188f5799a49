// Command @@PROJECT@@ says hello: the starting point cairn init writes.
package main

import "fmt"

// Greeting is what @@PROJECT@@ prints.
func Greeting() string {
	return "hello from @@PROJECT@@"
}

func main() {
	fmt.Println(Greeting())
}
