<?php
// worker.php is a small job for workerpool to run:
//
//   php worker.php NAME [SLEEP_MS] [EXIT_CODE]
//
// It sleeps SLEEP_MS milliseconds (default 0), prints one JSON document to
// stdout and a log line to stderr, and exits with EXIT_CODE (default 0).
// Text given on stdin comes back as "input"; $GREETING changes the greeting.

$name = $argv[1] ?? 'anonymous';
$sleepMs = (int) ($argv[2] ?? 0);
$exitCode = (int) ($argv[3] ?? 0);

usleep($sleepMs * 1000);
$input = stream_isatty(STDIN) ? '' : stream_get_contents(STDIN);

echo json_encode([
    'worker' => $name,
    'pid' => getmypid(),
    'greeting' => (getenv('GREETING') ?: 'hello') . ', ' . $name,
    'input' => $input === '' ? null : $input,
    'slept_ms' => $sleepMs,
]), "\n";
fwrite(STDERR, "worker $name: slept $sleepMs ms, exiting with $exitCode\n");
exit($exitCode);
