<?php

declare(strict_types=1);

namespace WorkerPool;

/**
 * One run of workerpool: iterating it starts the pool and yields one result
 * per task as each finishes; once it has ended, exitStatus() and
 * poolStderr() say how the pool ended. WorkerPool::start() makes one.
 *
 *     $run = $pool->start($tasks, ['threads' => 4]);
 *     foreach ($run as $result) {
 *         echo $result['identifier'], ' ', $result['exit_code'], "\n";
 *     }
 *     $run->exitStatus();                             // 0, or 1 when a task failed
 *
 * Each task is written to the pool's stdin as soon as it is pulled from the
 * iterable, and the next one is pulled only when the pipe can take more, so
 * results arrive while tasks are still being pulled, and neither the tasks
 * nor the results are ever all in memory. All three pipes are non-blocking
 * and served by one stream_select() loop, so the pool never waits on a full
 * pipe that this side is not draining: no deadlock, however many tasks and
 * however large their output.
 *
 * @implements \IteratorAggregate<int, array<string, mixed>>
 */
final class Run implements \IteratorAggregate
{
    /** Bytes handed to one write of the pool's stdin (more than a pipe takes at once). */
    private const WRITE_CHUNK = 65536;

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

    /**
     * Integers too large for a PHP int (in meta, say) are decoded as strings
     * of their digits, not as floats that lose some of them.
     */
    private const DECODE_FLAGS = JSON_BIGINT_AS_STRING | JSON_THROW_ON_ERROR;

    /** @var iterable<mixed, mixed>|null the tasks, until the run is iterated */
    private ?iterable $tasks;

    private bool $iterated = false;

    private ?int $exitStatus = null;

    private string $poolStderr = '';

    /**
     * Use WorkerPool::start(), which checks the options and makes the command.
     *
     * @internal
     *
     * @param list<string>          $cmd      the workerpool command line, with --ndjson
     * @param iterable<mixed, mixed> $tasks
     * @param \Closure|null         $onEvent  called with each event that is not a result
     * @param \Closure|null         $observer called with this run when it starts and when it ends
     */
    public function __construct(
        private readonly array $cmd,
        iterable $tasks,
        private readonly bool $decodeBinary = false,
        private readonly ?\Closure $onEvent = null,
        private readonly ?\Closure $observer = null,
    ) {
        $this->tasks = $tasks;
    }

    /**
     * The results, one array per task, as each finishes. The pool starts
     * when the generator is first iterated; leaving it before its end stops
     * the pool (see WorkerPool::run()). A run is iterated once: a second call
     * throws \LogicException.
     *
     * @return \Generator<int, array<string, mixed>, mixed, void>
     */
    public function getIterator(): \Generator
    {
        if ($this->iterated) {
            throw new \LogicException('this run has already been iterated: start a new one');
        }
        $this->iterated = true;
        $tasks = $this->tasks;
        $this->tasks = null;

        return $this->stream($tasks ?? []);
    }

    /**
     * The pool's exit status once the run has ended: 0 when every task
     * succeeded, 1 when at least one failed, 2 for a usage or input error
     * (also thrown), 143 when the run was stopped early (the generator was
     * left before its end), 128 + N when signal N killed the pool. Null
     * before the run has started and while it is in progress.
     */
    public function exitStatus(): ?int
    {
        return $this->exitStatus;
    }

    /** What the pool of this run wrote on its own stderr (its first 64 KiB). */
    public function poolStderr(): string
    {
        return $this->poolStderr;
    }

    /**
     * @param iterable<mixed, mixed> $tasks
     *
     * @return \Generator<int, array<string, mixed>, mixed, void>
     */
    private function stream(iterable $tasks): \Generator
    {
        $this->observe();

        $pipes = [];
        $proc = @proc_open($this->cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        if (!\is_resource($proc)) {
            throw new WorkerPoolException(sprintf('cannot start %s: %s', $this->cmd[0], error_get_last()['message'] ?? 'proc_open failed'));
        }
        [$stdin, $stdout, $stderr] = [$pipes[0], $pipes[1], $pipes[2]];
        foreach ($pipes as $pipe) {
            stream_set_blocking($pipe, false);
        }
        stream_set_write_buffer($stdin, 0);
        stream_set_read_buffer($stdout, 0);
        stream_set_read_buffer($stderr, 0);

        // The tasks, pulled one at a time when the pool's stdin can take more.
        $source = (static function (iterable $tasks): \Generator {
            yield from $tasks;
        })($tasks);
        $primed = false;
        $sourceDone = false;
        $taskNo = 0;
        $line = '';     // the task line being written ...
        $off = 0;       // ... from this offset

        $rbuf = '';     // the start of a result line not yet complete
        $outOpen = true;
        $errOpen = true;
        $selectErrors = 0;
        $completed = false;

        try {
            while ($outOpen || $errOpen) {
                if ($stdin !== null && $sourceDone && $off >= \strlen($line)) {
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
                // While stdin is open there is a task line to finish or a task to pull.
                $write = $stdin !== null ? [$stdin] : [];
                $except = null;
                if (@stream_select($read, $write, $except, null) === false) {
                    // Interrupted by a signal (EINTR): select again.
                    if (++$selectErrors > 1000) {
                        throw new WorkerPoolException('stream_select failed: ' . (error_get_last()['message'] ?? 'unknown error'), null, $this->poolStderr);
                    }
                    continue;
                }
                $selectErrors = 0;

                // Results first, so that they are yielded before a slow
                // source is asked for the next task.
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
                        $result = $this->decodeLine(substr($rbuf, $pos, $nl - $pos));
                        $pos = $scan = $nl + 1;
                        if ($result !== null) {
                            yield $result;
                        }
                    }
                    if ($pos > 0) {
                        $rbuf = (string) substr($rbuf, $pos);
                    }
                }

                if ($write === [] || $stdin === null) {
                    continue;
                }
                if ($off >= \strlen($line)) {
                    // The pipe takes more: pull one task and write it now.
                    // One task per pass of the loop, so that results are read
                    // between two tasks however slow the source is.
                    if ($primed) {
                        $source->next();
                    }
                    $primed = true;
                    if (!$source->valid()) {
                        $sourceDone = true;
                        $line = '';
                        $off = 0;
                        continue;
                    }
                    $line = self::encodeTask($source->current(), ++$taskNo);
                    $off = 0;
                }
                $chunk = $off === 0 && \strlen($line) <= self::WRITE_CHUNK ? $line : substr($line, $off, self::WRITE_CHUNK);
                $written = @fwrite($stdin, $chunk);
                if ($written === false) {
                    // The pool stopped reading its input (--fail-fast, a usage
                    // error, a signal): it answers only the tasks it read.
                    @fclose($stdin);
                    $stdin = null;
                    $sourceDone = true;
                    $line = '';
                    $off = 0;
                } else {
                    $off += $written;
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
            $this->exitStatus = self::reap($proc);
            $this->observe();
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

    private function observe(): void
    {
        if ($this->observer !== null) {
            ($this->observer)($this);
        }
    }

    /**
     * Decodes one line of the pool's stdout: a result (returned) or an
     * event (handed to the events callback; null returned).
     *
     * @return array<string, mixed>|null
     */
    private function decodeLine(string $line): ?array
    {
        if (trim($line) === '') {
            return null;
        }
        try {
            $msg = json_decode($line, true, self::JSON_DEPTH, self::DECODE_FLAGS);
        } catch (\JsonException $e) {
            throw new WorkerPoolException('workerpool wrote a line that is not JSON: ' . self::excerpt($line), null, $this->poolStderr, $e);
        }
        if (!\is_array($msg)) {
            throw new WorkerPoolException('workerpool wrote a line that is not a JSON object: ' . self::excerpt($line), null, $this->poolStderr);
        }
        if (\array_key_exists('event', $msg)) {
            if ($msg['event'] !== 'finished') {
                if ($this->onEvent !== null) {
                    ($this->onEvent)($msg);
                }

                return null;
            }
            unset($msg['event']);
        }
        if ($this->decodeBinary && ($msg['encoding'] ?? null) === 'base64') {
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

    /**
     * Waits for the pool to exit, reaps it and returns its status as a shell
     * reports it: its exit code, or 128 + N when signal N killed it (a pool
     * stopped by SIGTERM before it handles signals is 143, as one that
     * handles it). proc_close() alone cannot tell the two apart: for a
     * process killed by signal N it returns N. A pool still running
     * STOP_WAIT seconds after its pipes ended is killed.
     *
     * @param resource $proc
     */
    private static function reap($proc): int
    {
        $deadline = microtime(true) + self::STOP_WAIT;
        $killed = false;
        $pause = 1_000;
        // Only the first proc_get_status() that finds the process ended has
        // its status (it reaps it), so the loop keeps that one.
        while (($status = proc_get_status($proc))['running']) {
            if (!$killed && microtime(true) >= $deadline) {
                @proc_terminate($proc, 9);
                $killed = true;
            }
            usleep($pause);
            $pause = min(2 * $pause, 50_000);
        }
        proc_close($proc);

        return $status['signaled'] ? 128 + $status['termsig'] : $status['exitcode'];
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

    private static function excerpt(string $text): string
    {
        return \strlen($text) > 200 ? substr($text, 0, 200) . '...' : $text;
    }
}
