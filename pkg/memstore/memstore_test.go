package memstore

import (
	"errors"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
)

type rec struct {
	Name string
	Tags []string
}

func cloneRec(r *rec) *rec {
	c := *r
	c.Tags = append([]string(nil), r.Tags...)
	return &c
}

// Reads hand out copies: changing one changes nothing in the store.
func TestReadsAreCopies(t *testing.T) {
	s := New(cloneRec)
	s.Add("abc", &rec{Name: "a", Tags: []string{"x"}})
	got, ok := s.Get("abc")
	if !ok {
		t.Fatal("not found")
	}
	got.Name, got.Tags[0] = "changed", "changed"
	for _, r := range append(s.List(), func() *rec { r, _ := s.Get("abc"); return r }()) {
		if r.Name != "a" || r.Tags[0] != "x" {
			t.Fatalf("the store's record changed through a copy: %+v", r)
		}
	}
}

func TestResolveByUniquePrefix(t *testing.T) {
	s := New(cloneRec)
	s.Add("abc1", &rec{})
	s.Add("abd2", &rec{})
	if id, err := s.Resolve("abc"); err != nil || id != "abc1" {
		t.Fatalf("Resolve(abc) = %q, %v", id, err)
	}
	if _, err := s.Resolve("ab"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	s.Delete("abc1")
	if _, err := s.Resolve("abc"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("deleted ID still resolves: %v", err)
	}
	if _, ok := s.Get("abc1"); ok {
		t.Fatal("deleted record still there")
	}
	if ids := s.IDs(); len(ids) != 1 || ids[0] != "abd2" {
		t.Fatalf("IDs %v", ids)
	}
}

// Images index the hex of their "sha256:<hex>" IDs.
func TestIndexKey(t *testing.T) {
	s := New(cloneRec).WithIndexKey(func(id string) string { return id[len("sha256:"):] })
	s.Add("sha256:beef", &rec{})
	if key, err := s.Resolve("be"); err != nil || key != "beef" {
		t.Fatalf("Resolve(be) = %q, %v", key, err)
	}
	s.Delete("sha256:beef")
	if _, err := s.Resolve("be"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("deleted image still resolves: %v", err)
	}
}

// Replace never brings back a record deleted meanwhile.
func TestReplaceKeepsADeletedRecordDeleted(t *testing.T) {
	s := New(cloneRec)
	s.Add("a", &rec{Name: "old"})
	if !s.Replace("a", &rec{Name: "new"}) {
		t.Fatal("replace of a present record refused")
	}
	s.Delete("a")
	if s.Replace("a", &rec{Name: "late"}) {
		t.Fatal("replace brought back a deleted record")
	}
	if len(s.List()) != 0 {
		t.Fatalf("records %v", s.List())
	}
}

func TestNamesAreReservedOnce(t *testing.T) {
	s := New(cloneRec)
	if err := s.Reserve("web_ns", "id1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve("web_ns", "id1"); err != nil {
		t.Fatalf("reserving again for the holder: %v", err)
	}
	if err := s.Reserve("web_ns", "id2"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second holder: %v, want AlreadyExists", err)
	}
	s.Release("web_ns", "id2") // not the holder: nothing happens
	if h, ok := s.Holder("web_ns"); !ok || h != "id1" {
		t.Fatalf("holder %q %v after a release by another ID", h, ok)
	}
	s.Release("web_ns", "id1")
	if err := s.Reserve("web_ns", "id2"); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if h, _ := s.Holder("web_ns"); h != "id2" {
		t.Fatalf("holder %q, want id2", h)
	}
}

func TestFindReturnsACopy(t *testing.T) {
	s := New(cloneRec)
	s.Add("a", &rec{Name: "a", Tags: []string{"x"}})
	s.Add("b", &rec{Name: "b", Tags: []string{"y"}})
	got, ok := s.Find(func(r *rec) bool { return r.Tags[0] == "y" })
	if !ok || got.Name != "b" {
		t.Fatalf("Find = %+v, %v", got, ok)
	}
	got.Tags[0] = "changed"
	if _, ok := s.Find(func(r *rec) bool { return r.Tags[0] == "changed" }); ok {
		t.Fatal("the store's record changed through a copy")
	}
	if _, ok := s.Find(func(r *rec) bool { return false }); ok {
		t.Fatal("found what matches nothing")
	}
}
