package input

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// TestReaderLateRejectKeepsFirstLines plays a store that reports a duplicate
// only after reading the file to the end, past more invalid lines than are
// listed: the list still holds the first lines, the duplicate among them.
func TestReaderLateRejectKeepsFirstLines(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"custom_id":"a","model":"m","prompt":"p"}` + "\n")
	b.WriteString(`{"custom_id":"a","model":"m","prompt":"p"}` + "\n")
	for range jobs.MaxReported + 10 {
		b.WriteString(`{"model":"m"}` + "\n")
	}
	r, err := Open(writeInput(t, b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		if _, err := r.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	r.Reject(2, `duplicate custom_id "a" (first used on line 1)`)
	var verr *jobs.ValidationError
	if err := r.Err(); !errors.As(err, &verr) {
		t.Fatalf("Err() = %v, want a *jobs.ValidationError", err)
	}
	if got, want := verr.Total, jobs.MaxReported+11; got != want {
		t.Errorf("Total = %d, want %d", got, want)
	}
	var lines []string
	for _, e := range verr.Errors {
		lines = append(lines, fmt.Sprint(e.Line))
	}
	want := []string{"2"}
	for l := 3; len(want) < jobs.MaxReported; l++ {
		want = append(want, fmt.Sprint(l))
	}
	if got := strings.Join(lines, ","); got != strings.Join(want, ",") {
		t.Errorf("listed lines %s, want %s", got, strings.Join(want, ","))
	}
}

// TestDatasetLateRejectKeepsFirstLines: the same for a dataset, whose
// valid records after the invalid ones are all handed out.
func TestDatasetLateRejectKeepsFirstLines(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"id":"a"}` + "\n" + `{"id":"a"}` + "\n")
	for range jobs.MaxReported + 10 {
		b.WriteString(`{"no-id":1}` + "\n")
	}
	b.WriteString(`{"id":"b"}` + "\n")
	tmpl, err := ParseTemplate("t.tmpl", "hi")
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenDataset(writeInput(t, b.String()), DatasetOptions{Template: tmpl, Model: "m", IDField: "id"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var handed []int
	for {
		r, err := d.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		handed = append(handed, r.Line)
	}
	last := jobs.MaxReported + 13
	if got, want := fmt.Sprint(handed), fmt.Sprint([]int{1, 2, last}); got != want {
		t.Errorf("handed out lines %s, want %s", got, want)
	}
	d.Reject(last, `duplicate custom_id "b"`) // after the listed lines: only counted
	d.Reject(2, `duplicate custom_id "a" (first used on line 1)`)
	var verr *jobs.ValidationError
	if err := d.Err(); !errors.As(err, &verr) {
		t.Fatalf("Err() = %v, want a *jobs.ValidationError", err)
	}
	if got, want := verr.Total, jobs.MaxReported+12; got != want {
		t.Errorf("Total = %d, want %d", got, want)
	}
	if got := verr.Errors[0]; got.Line != 2 || !strings.Contains(got.Reason, "duplicate") {
		t.Errorf("first error %v, want the duplicate of line 2", got)
	}
	if got, want := verr.Errors[len(verr.Errors)-1].Line, jobs.MaxReported+1; got != want {
		t.Errorf("last listed line %d, want %d", got, want)
	}
}
