package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"time"
)

// maxBurn bounds a burner's life whatever its parent asks.
const maxBurn = 10 * time.Minute

// burnCmd is the hidden "burn" sub-command: it keeps one core busy for
// -for (at most maxBurn), or until its standard input ends (the parent
// closed it, or died), whichever comes first.
func burnCmd(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("fhirsub-load burn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := fs.Duration("for", 30*time.Second, "how long to keep one core busy (at most 10m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *d <= 0 {
		return errors.New("burn: -for must be positive")
	}
	runtime.GOMAXPROCS(1)
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(stop)
	}()
	end := time.Now().Add(min(*d, maxBurn))
	x := uint64(1)
	for time.Now().Before(end) {
		select {
		case <-stop:
			return nil
		default:
		}
		for i := range uint64(1 << 16) {
			x = x*6364136223846793005 + i
		}
	}
	if x == 0 { // keeps the loop from being optimised away
		fmt.Fprintln(stderr, "burn: zero")
	}
	return nil
}

// burners are child processes of this executable running burnCmd.
type burners struct {
	cmds  []*exec.Cmd
	pipes []io.Closer
}

// startBurners starts n burners of at most d each. Stop them with stop,
// which also runs when starting one fails.
func startBurners(n int, d time.Duration) (*burners, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("burners: %w", err)
	}
	b := &burners{}
	for range n {
		cmd := exec.Command(exe, "burn", "-for", d.String())
		in, err := cmd.StdinPipe()
		if err != nil {
			b.stop()
			return nil, fmt.Errorf("burners: %w", err)
		}
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			_ = in.Close()
			b.stop()
			return nil, fmt.Errorf("burners: start %s burn: %w", exe, err)
		}
		b.cmds, b.pipes = append(b.cmds, cmd), append(b.pipes, in)
	}
	return b, nil
}

// stop ends every burner (closing its input, then killing it) and waits
// for them. Safe to call twice.
func (b *burners) stop() {
	for _, p := range b.pipes {
		_ = p.Close()
	}
	for _, c := range b.cmds {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	b.cmds, b.pipes = nil, nil
}
