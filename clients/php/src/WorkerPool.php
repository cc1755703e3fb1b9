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
 * run() starts one workerpool process, writes each task to its stdin as
 * soon as it is pulled from the iterable and yields each result as the pool
 * writes it, so results arrive while tasks are still being written, and
 * neither the tasks nor the results are ever all in memory (see Run).
 *
 * Each run has its own status: start() returns the Run, whose exitStatus()
 * belongs to it alone, which is what runs that overlap (one loop inside
 * another, say) need. exitStatus() and poolStderr() on the pool report the
 * run that started or ended last, so after a loop they report its run.
 */
final class WorkerPool
{
    private const OPTIONS = ['threads', 'timeout', 'retries', 'ordered', 'binary', 'max_output', 'fail_fast', 'events'];

    private string $binary;

    /** This object's run that started or ended last: the one exitStatus() and poolStderr() report. */
    private ?Run $latest = null;

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
     * one JSON object on one line. Each task is written to the pool's stdin
     * as soon as it is pulled from $tasks, and the next one is pulled only
     * when the pipe can take more, so $tasks may be a generator of any
     * length, or a slow one whose tasks start as they come.
     *
     * Each result is the decoded result line: identifier, exit_code,
     * result_body, stderr, seq, duration_ms, and when they apply error,
     * signal, timed_out, attempts, truncated, meta, ... (see the workerpool
     * README). An integer too large for a PHP int (in meta, say) comes as a
     * string of its digits. A task that failed, could not start or was
     * invalid is a result, not an exception.
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
        return $this->start($tasks, $options)->getIterator();
    }

    /**
     * Makes a run of the tasks, as run() does, and returns it: iterating it
     * yields the results, and its exitStatus() and poolStderr() are its own,
     * whatever other runs of this pool do meanwhile.
     *
     *     $run = $pool->start($tasks, ['threads' => 4]);
     *     foreach ($run as $result) { ... }
     *     $run->exitStatus();
     *
     * @param iterable<mixed, array<string, mixed>|object|string> $tasks
     * @param array<string, mixed>                                 $options as for run()
     *
     * @throws \InvalidArgumentException for an unknown option or a value of the wrong type
     */
    public function start(iterable $tasks, array $options = []): Run
    {
        [$flags, $decodeBinary, $onEvent] = self::parseOptions($options);

        return new Run(
            [$this->binary, '--ndjson', ...$flags],
            $tasks,
            $decodeBinary,
            $onEvent,
            function (Run $run): void {
                $this->latest = $run;
            },
        );
    }

    /**
     * The exit status of the pool of this object's run that started or ended
     * last: after a run, that run's status; null before the first run, and
     * from the moment a run starts until one ends. 0 when every task
     * succeeded, 1 when at least one failed, 2 for a usage or input error
     * (also thrown), 143 when the run was stopped early (the generator was
     * left before its end), 128 + N when signal N killed the pool. For runs
     * that overlap, ask each Run (see start()).
     */
    public function exitStatus(): ?int
    {
        return $this->latest?->exitStatus();
    }

    /** What the pool of the run that started or ended last wrote on its own stderr (its first 64 KiB). */
    public function poolStderr(): string
    {
        return $this->latest?->poolStderr() ?? '';
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
}
