// A statically linked Go program, built with CGO_ENABLED=0.
package main

import (
	"fmt"
	"time"
)

func main() {
	_, err := time.LoadLocation("Europe/Paris")
	fmt.Printf("hello from Go (time zones: %v)\n", err == nil)
}
