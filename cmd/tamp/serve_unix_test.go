//go:build unix

package main

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestServeSIGTERM sends the process SIGTERM while `tamp serve` runs: the
// command must catch it and return cleanly, as under a supervisor.
func TestServeSIGTERM(t *testing.T) {
	url, errc := startServe(t, context.Background())
	if resp, err := http.Get(url + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tamp serve did not stop on SIGTERM")
	}
}
