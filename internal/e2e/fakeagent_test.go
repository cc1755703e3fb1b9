package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/workerpool/workerpool/remote"
)

// fakeAgent is an agent that misbehaves as $WP_FAKE_MODE says, for the
// tests that hold the pool to its promises against one. It greets as an
// agent of this protocol would, answers each heartbeat with one (but in
// mode silent), and for each task:
//
//   - huge-usage: succeeds, printing "ok", with figures out of any range;
//   - unknown-id: replies for a task that was never asked for;
//   - thrice: replies three times, printing "ok";
//   - negative-length: gives its output a negative length;
//   - silent: says nothing at all, not even a heartbeat;
//   - deaf: says nothing of it, whatever its time limit, or a cancel.
func fakeAgent() {
	mode := os.Getenv("WP_FAKE_MODE")
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, `{"workerpool_agent":"fake","protocol":%d,"os":"linux","arch":"amd64","cpus":1}`+"\n", remote.Protocol)
	w.Flush()
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			return
		}
		var q struct {
			ID        uint64 `json:"id"`
			Cancel    bool   `json:"cancel"`
			Heartbeat int64  `json:"heartbeat"`
		}
		if json.Unmarshal(line, &q) != nil {
			return
		}
		switch {
		case mode == "silent":
		case q.Heartbeat > 0:
			fmt.Fprintln(w, `{"id":0,"heartbeat":true,"stdout":0,"stderr":0}`)
		case q.Cancel || mode == "deaf":
		case mode == "huge-usage":
			fmt.Fprintf(w, `{"id":%d,"exit_code":0,"started":true,"duration":1e30,"usage":{"user":1e30,"system":-5,"max_rss_kb":1e300},"stdout":2,"stderr":0}`+"\nok\n", q.ID)
		case mode == "unknown-id":
			fmt.Fprintf(w, `{"id":%d,"exit_code":0,"stdout":0,"stderr":0}`+"\n", q.ID+1000)
		case mode == "thrice":
			for range 3 {
				fmt.Fprintf(w, `{"id":%d,"exit_code":0,"started":true,"stdout":2,"stderr":0}`+"\nok\n", q.ID)
			}
		case mode == "negative-length":
			fmt.Fprintf(w, `{"id":%d,"exit_code":0,"stdout":-1,"stderr":0}`+"\n", q.ID)
		}
		w.Flush()
	}
}
