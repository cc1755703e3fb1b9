<?php
// executor.php runs a batch of worker.php jobs through workerpool the
// classic way: all tasks in one JSON file, all results as one JSON array on
// the last line of stdout.
//
//   php executor.php
//
// workerpool is $WORKERPOOL if set, else the one on PATH, else ../bin/workerpool.
// Exits 0 when every task came back with a result, whatever its exit code.

function workerpool(): string
{
    $bin = getenv('WORKERPOOL') ?: trim((string) shell_exec('command -v workerpool'));
    return $bin !== '' ? $bin : __DIR__ . '/../bin/workerpool';
}

$jobs = ['ann' => 300, 'ben' => 0, 'cat' => 150, 'dan' => 0];
$tasks = [];
foreach ($jobs as $name => $sleepMs) {
    $tasks[] = [
        'identifier' => $name,
        'command' => 'php',
        'args' => [__DIR__ . '/worker.php', $name, (string) $sleepMs],
    ];
}
// One job that fails, to show how a failure is reported.
$tasks[] = ['identifier' => 'eve', 'command' => 'php', 'args' => [__DIR__ . '/worker.php', 'eve', '0', '2']];

// The tasks go in a file (-i), not on the command line: an argument is
// limited to 128 KiB, a few thousand tasks, past which exec() fails.
$file = tempnam(sys_get_temp_dir(), 'tasks');
file_put_contents($file, json_encode($tasks));
exec(escapeshellarg(workerpool()) . ' -t 4 -i ' . escapeshellarg($file), $out, $status);
unlink($file);
$results = json_decode((string) end($out), true);
if (!is_array($results)) {
    fwrite(STDERR, "workerpool exited with $status and no results\n");
    exit(1);
}

foreach ($results as $r) {
    $body = json_decode($r['result_body'], true);
    $note = $r['error'] ?? ($r['exit_code'] === 0 ? $body['greeting'] ?? '' : trim($r['stderr'] ?? ''));
    printf("%-4s %-4s exit=%d %6.0f ms  %s\n",
        $r['identifier'],
        $r['exit_code'] === 0 ? 'ok' : 'FAIL',
        $r['exit_code'],
        $r['duration_ms'] ?? 0,
        $note);
}
printf("%d tasks, %d results, workerpool exited with %d\n", count($tasks), count($results), $status);
exit(array_column($results, 'identifier') === array_column($tasks, 'identifier') ? 0 : 1);
