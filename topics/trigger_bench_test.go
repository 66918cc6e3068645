package topics_test

import (
	"testing"

	"github.com/fhirsub/fhirsub/topics"
)

func BenchmarkTriggered(b *testing.B) {
	crit := mustBuiltIn(b, "critical-result")
	cases := []struct {
		name string
		c    topics.Change
	}{
		{"critical-result/update-fires", topics.Change{Interaction: "update", Previous: obs(b, "preliminary", "N"), Current: obs(b, "final", "HH")}},
		{"critical-result/update-normal", topics.Change{Interaction: "update", Previous: obs(b, "preliminary", "N"), Current: obs(b, "final", "N")}},
		{"critical-result/create-fires", topics.Change{Interaction: "create", Current: obs(b, "final", "LL")}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := crit.Triggered(tc.c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	ra := mustBuiltIn(b, "result-available")
	c := topics.Change{Interaction: "update", Previous: obs(b, "preliminary", ""), Current: obs(b, "final", "")}
	b.Run("result-available/query-criteria", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ra.Triggered(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
