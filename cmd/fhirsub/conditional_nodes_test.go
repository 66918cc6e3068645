package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestConditionalWritesAcrossNodes races identical conditional creates
// and conditional updates on two nodes sharing one MongoDB-protocol
// database (FerretDB, started by the test): each round creates exactly one
// resource, and every other request answers with it. The race is decided
// by the database's unique _id, not by one process's locks.
func TestConditionalWritesAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test skipped in -short mode")
	}
	uri := startFerretServer(t)
	var nodes []*serverProc
	for i := range 2 {
		nodes = append(nodes, startServerProc(t, "--mongodb-uri", uri, "--mongodb-database", "conditional",
			"--node-id", fmt.Sprintf("cond-%d", i)))
	}
	const perRound = 8
	for round := range 4 {
		ident := fmt.Sprintf("race-%d", round)
		method, path := "POST", "/Patient"
		if round%2 == 1 {
			method, path = "PUT", "/Patient?identifier=urn:race|"+ident
		}
		body, _ := json.Marshal(map[string]any{"resourceType": "Patient",
			"identifier": []any{map[string]any{"system": "urn:race", "value": ident}}})
		statuses := make([]int, perRound)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range perRound {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest(method, nodes[i%len(nodes)].base+path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/fhir+json")
				if method == "POST" {
					req.Header.Set("If-None-Exist", "identifier=urn:race|"+ident)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("%s %s: %v", method, path, err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		close(start)
		wg.Wait()
		created, ok := 0, 0
		for _, s := range statuses {
			switch s {
			case http.StatusCreated:
				created++
			case http.StatusOK:
				ok++
			}
		}
		stored := searchAll(t, nodes[0].base+"/Patient?identifier=urn:race|"+ident)
		t.Logf("round %d (%s): %d concurrent conditional writes on %d nodes: %d created, %d answered 200, %d stored",
			round, method, perRound, len(nodes), created, ok, len(stored))
		if created != 1 || ok != perRound-1 || len(stored) != 1 {
			t.Fatalf("round %d: statuses %v, %d stored; want one 201, the rest 200, one stored", round, statuses, len(stored))
		}
	}
}
