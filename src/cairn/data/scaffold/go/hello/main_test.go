package main

import "testing"

func TestGreeting(t *testing.T) {
	if got, want := Greeting(), "hello from @@PROJECT@@"; got != want {
		t.Fatalf("Greeting() = %q, want %q", got, want)
	}
}
