<?php

declare(strict_types=1);

namespace WorkerPool;

/**
 * Thrown when workerpool cannot be found or started, when it writes
 * something that is not a result line, or when it exits with status 2
 * (a usage or input error). The message includes what the pool wrote on
 * its stderr; getExitStatus() and getPoolStderr() give both separately.
 *
 * Failed tasks are never exceptions: they are results (exit_code, error).
 */
final class WorkerPoolException extends \RuntimeException
{
    public function __construct(
        string $message,
        private readonly ?int $exitStatus = null,
        private readonly string $poolStderr = '',
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, $exitStatus ?? 0, $previous);
    }

    /** The pool's exit status, or null when it did not get to exit. */
    public function getExitStatus(): ?int
    {
        return $this->exitStatus;
    }

    /** What the pool wrote on its stderr (its first 64 KiB). */
    public function getPoolStderr(): string
    {
        return $this->poolStderr;
    }
}
