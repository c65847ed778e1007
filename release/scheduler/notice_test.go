package scheduler

import (
	"fmt"
	"time"

	"github.com/relbot/relbot/release"
)

func ExampleBackupNotice_Text() {
	tick := time.Date(2030, 5, 10, 2, 0, 0, 0, time.UTC)
	ok := BackupNotice{
		App: "crm", Env: "production", Kind: KindBackup, OK: true, Tick: tick, Keep: 14, Kept: 14,
		Backup: &release.Backup{ID: "crm-b12", Size: 48_200_000, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Manifest: release.BackupSummary{Tables: 54, Rows: 120_345, Files: 7, FileBytes: 2_300_000, Duration: 3210 * time.Millisecond}},
	}
	fmt.Println(ok.Text())
	fmt.Println()
	failed := BackupNotice{
		App: "crm", Env: "staging", Kind: KindBackup, Tick: tick,
		Err:      `cannot connect to database crm_staging: FATAL: database "crm_staging" does not exist`,
		WhatToDo: "check that the database of crm staging is reachable and the artifact directory is writable and not full; then run `backup create crm staging` by hand",
	}
	fmt.Println(failed.Text())
	// Output:
	// Scheduled backup crm-b12 of crm production done
	// size 46.0 MiB, 54 tables, 120,345 rows, 7 files (2.2 MiB), in 3.2s
	// sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
	// 14 backups kept (keep 14)
	//
	// Scheduled backup of crm staging FAILED
	// what failed: cannot connect to database crm_staging: FATAL: database "crm_staging" does not exist
	// what to do: check that the database of crm staging is reachable and the artifact directory is writable and not full; then run `backup create crm staging` by hand
}
