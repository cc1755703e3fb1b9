<?php

declare(strict_types=1);

namespace WorkerPool;

/**
 * A client for the workerpool CLI in NDJSON mode.
 *
 *     $pool = new WorkerPool();                       // workerpool on PATH
 *     foreach ($pool->run($tasks, ['threads' => 4]) as $result) {
 *         echo $result['identifier'], ' ', $result['exit_code'], "\n";
 *     }
 *     $pool->exitStatus();                            // 0, or 1 when a task failed
 *
 * run() starts one workerpool process, writes the tasks to its stdin as they
 * are pulled from the iterable and yields each result as the pool writes it,
 * so results arrive while tasks are still being written, and neither the
 * tasks nor the results are ever all in memory. All three pipes are
 * non-blocking and served by one stream_select() loop, so the pool never
 * waits on a full pipe that this side is not draining: no deadlock, however
 * many tasks and however large their output.
 */
final class WorkerPool
{
    /** Bytes of task lines kept ready for the pool's stdin. */
    private const WRITE_AHEAD = 65536;

    /** Bytes asked for per read of the pool's stdout and stderr. */
    private const READ_CHUNK = 262144;

    /** Bytes of the pool's own stderr kept for the exception message. */
    private const STDERR_KEEP = 65536;

    /**
     * Seconds to wait for a stopped pool to stop its tasks and exit before
     * it is killed. The pool gives its tasks 5 s (its --grace) between
     * SIGTERM and SIGKILL, so it normally exits well within this.
     */
    private const STOP_WAIT = 15.0;

    /** Nesting accepted in a result line (meta is copied from the task; the pool takes 10,000). */
    private const JSON_DEPTH = 100_000;

    private const JSON_FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR;

    private const OPTIONS = ['threads', 'timeout', 'retries', 'ordered', 'binary', 'max_output', 'fail_fast', 'events'];

    private string $binary;

    private ?int $exitStatus = null;

    private string $poolStderr = '';

    /**
     * @param string|null $binary the workerpool executable: a path, or a name
     *                            looked up in PATH; null means "workerpool"
     *
     * @throws WorkerPoolException when it cannot be found or is not executable
     */
    public function __construct(?string $binary = null)
    {
        $this->binary = self::locate($binary ?? 'workerpool');
    }

    /** The path of the workerpool executable this client runs. */
    public function binary(): string
    {
        return $this->binary;
    }

    /**
     * Runs the tasks and yields one result per task as each finishes.
     *
     * Each task is an associative array with the keys of a workerpool task
     * (command, args, identifier, env, dir, stdin, timeout, limits, meta),
     * an object json_encode() turns into a JSON object, or a string holding
     * one JSON object on one line. Tasks are pulled from $tasks only as the
     * pool takes them, so $tasks may be a generator of any length.
     *
     * Each result is the decoded result line: identifier, exit_code,
     * result_body, stderr, seq, duration_ms, and when they apply error,
     * signal, timed_out, attempts, truncated, meta, ... (see the workerpool
     * README). A task that failed, could not start or was invalid is a
     * result, not an exception.
     *
     * Options:
     *  - threads    int         tasks run at once (-t; 0 = one per CPU)
     *  - timeout    string|int|float  time limit per task (--timeout: "1m30s" or seconds)
     *  - retries    int         rerun a failed task up to N more times (--retries)
     *  - ordered    bool        results in input order (--ordered)
     *  - binary     bool        capture output as bytes (--binary): result_body and
     *                           stderr are yielded as raw byte strings, not UTF-8 text
     *  - max_output int         cap on captured bytes per stream (--max-output)
     *  - fail_fast  bool        start nothing new after the first failure (--fail-fast)
     *  - events     callable    called with each "started" / "retrying" event
     *                           (--events); results are yielded without "event"
     *
     * The options are checked when run() is called; the pool starts when the
     * generator is first iterated. When the generator is destroyed before
     * the end (the caller breaks out of the loop, or an exception), the pool
     * is stopped (SIGTERM, which stops its tasks) and waited for.
     *
     * @param iterable<mixed, array<string, mixed>|object|string> $tasks
     * @param array<string, mixed>                                 $options
     *
     * @return \Generator<int, array<string, mixed>, mixed, void>
     *
     * @throws \InvalidArgumentException for an unknown option or a value of the wrong type
     *                                   (and, from the generator, for a task that cannot be encoded)
     * @throws WorkerPoolException       from the generator, when the pool cannot start,
     *                                   writes what is not a result, or exits with status 2
     */
    public function run(iterable $tasks, array $options = []): \Generator
    {
        [$flags, $decodeBinary, $onEvent] = self::parseOptions($options);

        return $this->stream([$this->binary, '--ndjson', ...$flags], $tasks, $decodeBinary, $onEvent);
    }

    /**
     * The exit status of the pool of the last run, once it has ended: 0 when
     * every task succeeded, 1 when at least one failed, 2 for a usage or
     * input error (also thrown), 143 when the run was stopped early (the
     * generator was left before its end). Null while a run is in progress,
     * and before the first.
     */
    public function exitStatus(): ?int
    {
        return $this->exitStatus;
    }

    /** What the pool of the last run wrote on its own stderr (its first 64 KiB). */
    public function poolStderr(): string
    {
        return $this->poolStderr;
    }

    /**
     * @param list<string> $cmd
     *
     * @return \Generator<int, array<string, mixed>, mixed, void>
     */
    private function stream(array $cmd, iterable $tasks, bool $decodeBinary, ?\Closure $onEvent): \Generator
    {
        $this->exitStatus = null;
        $this->poolStderr = '';

        $pipes = [];
        $proc = @proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        if (!\is_resource($proc)) {
            throw new WorkerPoolException(sprintf('cannot start %s: %s', $cmd[0], error_get_last()['message'] ?? 'proc_open failed'));
        }
        [$stdin, $stdout, $stderr] = [$pipes[0], $pipes[1], $pipes[2]];
        foreach ($pipes as $pipe) {
            stream_set_blocking($pipe, false);
        }
        stream_set_write_buffer($stdin, 0);
        stream_set_read_buffer($stdout, 0);
        stream_set_read_buffer($stderr, 0);

        // The tasks, pulled one at a time as the pool's stdin takes them.
        $source = (static function (iterable $tasks): \Generator {
            yield from $tasks;
        })($tasks);
        $primed = false;
        $sourceDone = false;
        $taskNo = 0;
        $wbuf = '';     // task lines not yet written ...
        $woff = 0;      // ... from this offset

        $rbuf = '';     // the start of a result line not yet complete
        $outOpen = true;
        $errOpen = true;
        $selectErrors = 0;
        $completed = false;

        try {
            while ($outOpen || $errOpen) {
                if ($stdin !== null && !$sourceDone && \strlen($wbuf) - $woff < self::WRITE_AHEAD) {
                    if ($woff > 0) {
                        $wbuf = (string) substr($wbuf, $woff);
                        $woff = 0;
                    }
                    while (\strlen($wbuf) < self::WRITE_AHEAD) {
                        if ($primed) {
                            $source->next();
                        }
                        $primed = true;
                        if (!$source->valid()) {
                            $sourceDone = true;
                            break;
                        }
                        $wbuf .= self::encodeTask($source->current(), ++$taskNo);
                    }
                }
                if ($stdin !== null && $sourceDone && $woff >= \strlen($wbuf)) {
                    fclose($stdin); // no more tasks: the pool finishes what it has and exits
                    $stdin = null;
                }

                $read = [];
                if ($outOpen) {
                    $read[] = $stdout;
                }
                if ($errOpen) {
                    $read[] = $stderr;
                }
                $write = $stdin !== null && $woff < \strlen($wbuf) ? [$stdin] : [];
                $except = null;
                if (@stream_select($read, $write, $except, null) === false) {
                    // Interrupted by a signal (EINTR): select again.
                    if (++$selectErrors > 1000) {
                        throw new WorkerPoolException('stream_select failed: ' . (error_get_last()['message'] ?? 'unknown error'));
                    }
                    continue;
                }
                $selectErrors = 0;

                if ($write !== [] && $stdin !== null) {
                    $chunk = $woff === 0 && \strlen($wbuf) <= self::WRITE_AHEAD ? $wbuf : substr($wbuf, $woff, self::WRITE_AHEAD);
                    $written = @fwrite($stdin, $chunk);
                    if ($written === false) {
                        // The pool stopped reading its input (--fail-fast, a usage
                        // error, a signal): it answers only the tasks it read.
                        @fclose($stdin);
                        $stdin = null;
                        $sourceDone = true;
                        $wbuf = '';
                        $woff = 0;
                    } else {
                        $woff += $written;
                    }
                }

                foreach ($read as $pipe) {
                    $data = @fread($pipe, self::READ_CHUNK);
                    if ($data === false || $data === '') {
                        if ($data === false || feof($pipe)) {
                            if ($pipe === $stdout) {
                                $outOpen = false;
                            } else {
                                $errOpen = false;
                            }
                        }
                        continue;
                    }
                    if ($pipe === $stderr) {
                        $this->keepStderr($data);
                        continue;
                    }
                    $scan = \strlen($rbuf);
                    $rbuf .= $data;
                    $pos = 0;
                    while (($nl = strpos($rbuf, "\n", $scan)) !== false) {
                        $line = substr($rbuf, $pos, $nl - $pos);
                        $pos = $scan = $nl + 1;
                        $result = $this->decodeLine($line, $decodeBinary, $onEvent);
                        if ($result !== null) {
                            yield $result;
                        }
                    }
                    if ($pos > 0) {
                        $rbuf = (string) substr($rbuf, $pos);
                    }
                }
            }
            if (trim($rbuf) !== '') {
                throw new WorkerPoolException('workerpool ended in the middle of a result line: ' . self::excerpt($rbuf), null, $this->poolStderr);
            }
            $completed = true;
        } finally {
            if ($stdin !== null) {
                @fclose($stdin);
            }
            if (!$completed) {
                // Stopped early: the pool stops its tasks on SIGTERM and writes
                // a result for each; read and drop them until it exits.
                @proc_terminate($proc, 15);
                if (!$this->drain($outOpen ? $stdout : null, $errOpen ? $stderr : null, self::STOP_WAIT)) {
                    @proc_terminate($proc, 9);
                    $this->drain($outOpen ? $stdout : null, $errOpen ? $stderr : null, self::STOP_WAIT);
                }
            }
            @fclose($stdout);
            @fclose($stderr);
            $this->exitStatus = proc_close($proc);
        }

        // 0: every task exited 0; 1: some failed, which the results say.
        // Anything else is the pool's own failure.
        if ($this->exitStatus !== 0 && $this->exitStatus !== 1) {
            $why = match ($this->exitStatus) {
                2 => 'usage or input error',
                126, 127 => 'it could not be started',
                129, 130, 143 => 'interrupted by a signal',
                141 => 'its output was closed',
                default => 'unexpected status',
            };
            $message = trim($this->poolStderr);
            throw new WorkerPoolException(
                "workerpool exited with status {$this->exitStatus} ($why)" . ($message !== '' ? ': ' . $message : ''),
                $this->exitStatus,
                $this->poolStderr,
            );
        }
    }

    /**
     * Decodes one line of the pool's stdout: a result (returned) or an
     * event (handed to $onEvent; null returned).
     *
     * @return array<string, mixed>|null
     */
    private function decodeLine(string $line, bool $decodeBinary, ?\Closure $onEvent): ?array
    {
        if (trim($line) === '') {
            return null;
        }
        try {
            $msg = json_decode($line, true, self::JSON_DEPTH, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new WorkerPoolException('workerpool wrote a line that is not JSON: ' . self::excerpt($line), null, $this->poolStderr, $e);
        }
        if (!\is_array($msg)) {
            throw new WorkerPoolException('workerpool wrote a line that is not a JSON object: ' . self::excerpt($line), null, $this->poolStderr);
        }
        if (\array_key_exists('event', $msg)) {
            if ($msg['event'] !== 'finished') {
                if ($onEvent !== null) {
                    $onEvent($msg);
                }

                return null;
            }
            unset($msg['event']);
        }
        if ($decodeBinary && ($msg['encoding'] ?? null) === 'base64') {
            foreach (['result_body', 'stderr'] as $key) {
                if (isset($msg[$key]) && \is_string($msg[$key])) {
                    $bytes = base64_decode($msg[$key], true);
                    if ($bytes === false) {
                        throw new WorkerPoolException("workerpool wrote a $key that is not base64: " . self::excerpt($line), null, $this->poolStderr);
                    }
                    $msg[$key] = $bytes;
                }
            }
            unset($msg['encoding']);
        }

        return $msg;
    }

    /**
     * Reads and drops what the pool still writes until both pipes end or
     * $seconds pass. Returns whether both ended.
     *
     * @param resource|null $stdout
     * @param resource|null $stderr
     */
    private function drain($stdout, $stderr, float $seconds): bool
    {
        $deadline = microtime(true) + $seconds;
        while ($stdout !== null || $stderr !== null) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                return false;
            }
            $read = array_values(array_filter([$stdout, $stderr], static fn ($p) => $p !== null));
            $write = $except = null;
            $ready = @stream_select($read, $write, $except, (int) $left, (int) (fmod($left, 1.0) * 1e6));
            if ($ready === false || $ready === 0) {
                continue;
            }
            foreach ($read as $pipe) {
                $data = @fread($pipe, self::READ_CHUNK);
                if ($data === false || ($data === '' && feof($pipe))) {
                    if ($pipe === $stdout) {
                        $stdout = null;
                    } else {
                        $stderr = null;
                    }
                } elseif ($pipe === $stderr) {
                    $this->keepStderr($data);
                }
            }
        }

        return true;
    }

    private function keepStderr(string $data): void
    {
        $room = self::STDERR_KEEP - \strlen($this->poolStderr);
        if ($room > 0) {
            $this->poolStderr .= substr($data, 0, $room);
        }
    }

    /** Encodes one task as one NDJSON line. */
    private static function encodeTask(mixed $task, int $n): string
    {
        if (\is_string($task)) {
            $line = rtrim($task, "\r\n");
            if (!str_starts_with(ltrim($line), '{') || str_contains($line, "\n")) {
                throw new \InvalidArgumentException("task #$n: a string task must be one JSON object on one line");
            }

            return $line . "\n";
        }
        if (\is_array($task)) {
            // An empty PHP array is a JSON list; these two fields are objects.
            foreach (['env', 'limits'] as $key) {
                if (($task[$key] ?? null) === []) {
                    $task[$key] = new \stdClass();
                }
            }
            // As an object, so that a list or an empty array still makes one
            // JSON object: the pool reports it as an invalid task.
            $task = (object) $task;
        } elseif (!\is_object($task)) {
            throw new \InvalidArgumentException(sprintf('task #%d: expected an array, an object or a JSON string, got %s', $n, get_debug_type($task)));
        }
        try {
            $line = json_encode($task, self::JSON_FLAGS);
        } catch (\JsonException $e) {
            throw new \InvalidArgumentException("task #$n cannot be encoded as JSON: " . $e->getMessage(), 0, $e);
        }
        if (!str_starts_with($line, '{')) {
            throw new \InvalidArgumentException("task #$n does not encode to a JSON object: " . self::excerpt($line));
        }

        return $line . "\n";
    }

    /**
     * @param array<mixed, mixed> $options
     *
     * @return array{0: list<string>, 1: bool, 2: \Closure|null}
     */
    private static function parseOptions(array $options): array
    {
        $flags = [];
        $decodeBinary = false;
        $onEvent = null;
        foreach ($options as $key => $value) {
            if (!\in_array($key, self::OPTIONS, true)) {
                throw new \InvalidArgumentException(sprintf('unknown option %s (known: %s)', var_export($key, true), implode(', ', self::OPTIONS)));
            }
            if ($value === null) {
                continue;
            }
            switch ($key) {
                case 'threads':
                case 'retries':
                case 'max_output':
                    if (!\is_int($value)) {
                        throw new \InvalidArgumentException("option $key must be an int, got " . get_debug_type($value));
                    }
                    $flag = ['threads' => '--max-threads', 'retries' => '--retries', 'max_output' => '--max-output'][$key];
                    $flags[] = $flag . '=' . $value;
                    break;
                case 'timeout':
                    if (\is_int($value)) {
                        $flags[] = '--timeout=' . $value;
                    } elseif (\is_float($value)) {
                        $flags[] = '--timeout=' . self::formatSeconds($value);
                    } elseif (\is_string($value)) {
                        $flags[] = '--timeout=' . $value;
                    } else {
                        throw new \InvalidArgumentException('option timeout must be a duration string or a number of seconds, got ' . get_debug_type($value));
                    }
                    break;
                case 'ordered':
                case 'binary':
                case 'fail_fast':
                    if (!\is_bool($value)) {
                        throw new \InvalidArgumentException("option $key must be a bool, got " . get_debug_type($value));
                    }
                    if ($value) {
                        $flags[] = ['ordered' => '--ordered', 'binary' => '--binary', 'fail_fast' => '--fail-fast'][$key];
                    }
                    $decodeBinary = $key === 'binary' ? $value : $decodeBinary;
                    break;
                case 'events':
                    if (!\is_callable($value)) {
                        throw new \InvalidArgumentException('option events must be a callable, got ' . get_debug_type($value));
                    }
                    $flags[] = '--events';
                    $onEvent = \Closure::fromCallable($value);
                    break;
            }
        }

        return [$flags, $decodeBinary, $onEvent];
    }

    /** A float number of seconds as the pool reads it: plain decimal, no exponent. */
    private static function formatSeconds(float $seconds): string
    {
        if (!is_finite($seconds)) {
            throw new \InvalidArgumentException('option timeout must be finite');
        }
        $text = rtrim(rtrim(sprintf('%.9F', $seconds), '0'), '.');

        return $text === '' || $text === '-' ? '0' : $text;
    }

    private static function locate(string $binary): string
    {
        if ($binary === '') {
            throw new WorkerPoolException('the workerpool binary path is empty');
        }
        if (str_contains($binary, '/') || (\DIRECTORY_SEPARATOR === '\\' && str_contains($binary, '\\'))) {
            if (!is_file($binary)) {
                throw new WorkerPoolException("workerpool binary not found: $binary");
            }
            if (!is_executable($binary)) {
                throw new WorkerPoolException("workerpool binary is not executable: $binary");
            }

            // Absolute, so that a later chdir() does not lose it.
            return realpath($binary) ?: $binary;
        }
        $names = \DIRECTORY_SEPARATOR === '\\' ? [$binary . '.exe', $binary] : [$binary];
        $path = (string) getenv('PATH');
        foreach (explode(\PATH_SEPARATOR, $path) as $dir) {
            if ($dir === '') {
                continue;
            }
            foreach ($names as $name) {
                $candidate = rtrim($dir, '/\\') . \DIRECTORY_SEPARATOR . $name;
                if (is_file($candidate) && is_executable($candidate)) {
                    return $candidate;
                }
            }
        }

        throw new WorkerPoolException(sprintf(
            '%s not found in PATH (%s); install it or pass its path: new WorkerPool(\'/path/to/workerpool\')',
            $binary,
            $path,
        ));
    }

    private static function excerpt(string $text): string
    {
        return \strlen($text) > 200 ? substr($text, 0, 200) . '...' : $text;
    }
}
