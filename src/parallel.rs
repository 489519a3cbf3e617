//! Work spread over the machine's cores, results in order. Large stacks are thousands of
//! independent resources: planning, encoding and rendering them is split into one run of
//! consecutive items per core.

/// `f` over `items`, in order, on up to as many threads as there are cores, each taking at
/// least `per_thread` items (so a small list stays on this thread).
pub fn map<T: Sync, R: Send>(items: &[T], per_thread: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let runs = map_runs(items, per_thread, |run| {
        run.iter().map(&f).collect::<Vec<R>>()
    });
    let mut out = Vec::with_capacity(items.len());
    for run in runs {
        out.extend(run);
    }
    out
}

/// `f` over consecutive runs of `items`, one run per thread (this one included), in order.
pub fn map_runs<T: Sync, R: Send>(
    items: &[T],
    per_thread: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let threads = threads_for(items.len(), per_thread);
    if threads == 1 {
        return vec![f(items)];
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let others: Vec<_> = items[size..]
            .chunks(size)
            .map(|run| scope.spawn(move || f(run)))
            .collect();
        let mut out = vec![f(&items[..size])];
        out.extend(
            others
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        out
    })
}

/// `f` over consecutive runs of `items`, taken by value, one run per thread (this one
/// included), in order.
pub fn map_owned_runs<T: Send, R: Send>(
    mut items: Vec<T>,
    per_thread: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let threads = threads_for(items.len(), per_thread);
    if threads == 1 {
        return vec![f(items)];
    }
    let size = items.len().div_ceil(threads);
    let mut runs = Vec::with_capacity(threads);
    while items.len() > size {
        let rest = items.split_off(size);
        runs.push(std::mem::replace(&mut items, rest));
    }
    runs.push(items);
    std::thread::scope(|scope| {
        let f = &f;
        let mut runs = runs.into_iter();
        let first = runs.next().expect("at least one run");
        let others: Vec<_> = runs.map(|run| scope.spawn(move || f(run))).collect();
        let mut out = vec![f(first)];
        out.extend(
            others
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        out
    })
}

/// As many threads as there are cores, or fewer so that each takes `per_thread` items.
fn threads_for(items: usize, per_thread: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items / per_thread.max(1))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_however_they_are_split() {
        let items: Vec<usize> = (0..10_000).collect();
        for per_thread in [1, 7, 256, 5_000, 20_000] {
            let doubled = map(&items, per_thread, |i| i * 2);
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            let sums = map_runs(&items, per_thread, <[usize]>::len);
            assert_eq!(sums.iter().sum::<usize>(), items.len());
            let owned: Vec<usize> = map_owned_runs(items.clone(), per_thread, |run| run)
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(owned, items);
        }
        assert_eq!(map(&[] as &[usize], 1, |i| *i), Vec::<usize>::new());
    }
}
