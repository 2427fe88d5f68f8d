//go:build linux

package conformance

// StageCount exports stageCount to the tests of package conformance_test.
var StageCount = stageCount
