package cli

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChooseVersion: the -ldflags version wins; then the module version Go
// recorded, a release's or a pseudo-version, but not "(devel)"; then the
// VCS revision; then dev.
func TestChooseVersion(t *testing.T) {
	build := func(version string, settings ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/workerpool/workerpool", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return info
	}
	const rev = "853c636cd0a6c5a2c5ee1b8e2a1a4f8d9c0e7b11"
	tests := []struct {
		name   string
		ldflag string
		info   *debug.BuildInfo
		want   string
	}{
		{"make build", "v1.2.3-4-g853c636", build("v1.2.3", "vcs.revision", rev), "v1.2.3-4-g853c636"},
		{"make build, no build info", "v1.2.3-4-g853c636", nil, "v1.2.3-4-g853c636"},
		{"go install module@version, -buildvcs=false", "", build("v1.2.3"), "v1.2.3"},
		{"go install module@version", "", build("v1.2.3", "vcs.revision", rev), "v1.2.3"},
		{"go install . from a checkout", "", build("v0.0.0-20261127211444-853c636cd0a6+dirty", "vcs.revision", rev, "vcs.modified", "true"), "v0.0.0-20261127211444-853c636cd0a6+dirty"},
		{"devel with a revision", "", build("(devel)", "vcs.revision", rev, "vcs.modified", "false"), rev},
		{"devel with a modified tree", "", build("(devel)", "vcs.revision", rev, "vcs.modified", "true"), rev + "+dirty"},
		{"no version, a revision", "", build("", "vcs.revision", rev), rev},
		{"-buildvcs=false in a checkout", "", build("(devel)"), "dev"},
		{"no build info", "", nil, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, chooseVersion(tt.ldflag, tt.info))
		})
	}
}
