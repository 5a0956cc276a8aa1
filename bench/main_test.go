package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOptions(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.scenario != "seckill" || len(o.targets) != 0 || o.duration.Seconds() != 20 || o.rate != 0 || !o.verify {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseOptions([]string{"--target", "http://10.0.0.1:8080/, http://10.0.0.2:8080", "--rate", "500"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.targets, " ") != "http://10.0.0.1:8080 http://10.0.0.2:8080" || o.rate != 500 {
		t.Errorf("targets %q rate %v", o.targets, o.rate)
	}
	for _, args := range [][]string{
		{"--nodes", "3"},
		{"--nodes", "0"},
		{"--scenario", "casino"},
		{"--target", "10.0.0.1:8080"},
		{"--target", "http://h:1/v1"},
		{"--concurrency", "0"},
		{"--duration", "0s"},
		{"--rate", "-1"},
		{"--stock", "0"},
		{"--auth-secret-file", "x"},
		{"extra"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if _, err := parseOptions([]string{"--nodes", "3"}, io.Discard); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Errorf("--nodes 3: %v, want a clear refusal", err)
	}
}

func TestTargetNeedsSecret(t *testing.T) {
	t.Setenv("ALLOT_AUTH_SECRET", "")
	var out, errs bytes.Buffer
	if code := run([]string{"--target", "http://127.0.0.1:1"}, &out, &errs); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(errs.String(), "ALLOT_AUTH_SECRET") {
		t.Errorf("stderr %q does not say where the secret comes from", errs.String())
	}
}

// TestEmbeddedRun is the whole tool end to end: an embedded node, a small
// seckill that sells out, the read-back and verification, the JSON report.
func TestEmbeddedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded node")
	}
	path := filepath.Join(t.TempDir(), "report.json")
	var out, errs bytes.Buffer
	// The run ends once the 400 users have tried; --duration only bounds it.
	code := run([]string{"--duration", "30s", "--concurrency", "8", "--vouchers", "2", "--stock", "40",
		"--users", "400", "--json", path}, &out, &errs)
	if code != exitPass {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "verify: PASS") {
		t.Errorf("summary lacks the verdict:\n%s", out.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Allot struct {
			Requests      int64            `json:"requests"`
			ThroughputRPS float64          `json:"throughput_rps"`
			Responses     map[string]int64 `json:"responses"`
		} `json:"allot"`
		Verify struct {
			Pass         bool `json:"pass"`
			Acknowledged int  `json:"acknowledged"`
		} `json:"verify"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// 400 users race for 80 units, each trying once; a few try twice.
	if rep.Allot.Requests < 400 || rep.Allot.ThroughputRPS <= 0 || !rep.Verify.Pass {
		t.Errorf("report: %+v", rep)
	}
	if got := rep.Allot.Responses["201"]; got != 80 || rep.Verify.Acknowledged != 80 {
		t.Errorf("%d answered 201, %d acknowledged; want the 80 units sold exactly", got, rep.Verify.Acknowledged)
	}
	if rep.Allot.Responses["409 sold_out"] == 0 {
		t.Errorf("no sold_out answers: %v", rep.Allot.Responses)
	}
}
