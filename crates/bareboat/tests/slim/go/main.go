// A statically linked Go program, built with CGO_ENABLED=0: it prints its greeting, or
// serves it over HTTP (`server serve ADDRESS`).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func greeting() string {
	_, err := time.LoadLocation("Europe/Paris")
	return fmt.Sprintf("hello from Go (time zones: %v)\n", err == nil)
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve" {
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, greeting())
		})
		log.Fatal(http.ListenAndServe(os.Args[2], nil))
	}
	fmt.Print(greeting())
}
