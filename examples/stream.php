<?php
// stream.php talks to a running workerpool through proc_open: it writes
// tasks to the pool's stdin one line at a time and reads each result line
// from its stdout as soon as it is ready, while other tasks still run.
//
//   php stream.php
//
// workerpool is $WORKERPOOL if set, else the one on PATH, else ../bin/workerpool.
// Exits 0 when the fast task's result arrived while the slow one was still
// running and stdin was still open, and every task came back.

function workerpool(): string
{
    $bin = getenv('WORKERPOOL') ?: trim((string) shell_exec('command -v workerpool'));
    return $bin !== '' ? $bin : __DIR__ . '/../bin/workerpool';
}

// send writes one task as one NDJSON line.
function send($stdin, string $id, int $sleepMs): void
{
    $task = ['identifier' => $id, 'command' => 'php', 'args' => ['worker.php', $id, (string) $sleepMs], 'dir' => __DIR__];
    fwrite($stdin, json_encode($task) . "\n");
    fflush($stdin);
    echo "sent $id (sleeps $sleepMs ms)\n";
}

// receive waits for the next result line and prints when it arrived and
// whether the pool's stdin was still open at that moment.
function receive($stdout, $stdin, float $start): ?array
{
    $line = fgets($stdout);
    if ($line === false) {
        return null;
    }
    $r = json_decode($line, true);
    printf("result %s exit=%d stdin=%s after=%.2fs\n",
        $r['identifier'], $r['exit_code'], is_resource($stdin) ? 'open' : 'closed', microtime(true) - $start);
    return $r;
}

$start = microtime(true);
$pool = proc_open([workerpool(), '--ndjson', '-t', '4'], [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => STDERR], $pipes);
if ($pool === false) {
    exit(1);
}
[$stdin, $stdout] = $pipes;

send($stdin, 'slow', 1500);
send($stdin, 'fast', 0);
$first = receive($stdout, $stdin, $start);
$ok = ($first['identifier'] ?? '') === 'fast';
echo $ok ? "fast finished while slow was still running\n" : "expected fast first\n";

send($stdin, 'last', 0);
fclose($stdin);
echo "stdin closed\n";

$seen = [$first['identifier'] ?? ''];
while ($r = receive($stdout, $stdin, $start)) {
    $seen[] = $r['identifier'];
}
fclose($stdout);
$status = proc_close($pool);
echo "workerpool exited with $status\n";

sort($seen);
exit($ok && $status === 0 && $seen === ['fast', 'last', 'slow'] ? 0 : 1);
