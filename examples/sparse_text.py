"""
Text classification on sparse TF-IDF features
=============================================

The first layer multiplies the sparse matrix directly (it is never densified), so the
vocabulary can be large.

Run: ``python examples/sparse_text.py``
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from fastbp import BackpropClassifier

# %%
# A corpus and its TF-IDF features
# --------------------------------
# A small corpus, built here (no downloads): sentences about three topics.
rng = np.random.RandomState(0)
topics = {
    "sport": "match goal team player coach league season score win referee stadium",
    "cooking": "recipe oven flour sugar butter bake dough sauce pan spice taste",
    "space": "orbit rocket planet star launch moon galaxy telescope astronaut mars",
}
filler = "the a of and to in is with on for it this that very quite really".split()
texts, labels = [], []
for label, words in topics.items():
    words = words.split()
    for _ in range(300):
        sentence = list(rng.choice(words, 4)) + list(rng.choice(filler, 6))
        sentence += list(rng.choice(topics[rng.choice(list(topics))].split(), 2))  # noise
        rng.shuffle(sentence)
        texts.append(" ".join(sentence))
        labels.append(label)

X_train, X_test, y_train, y_test = train_test_split(texts, labels, random_state=0)
vectorizer = TfidfVectorizer(ngram_range=(1, 2))
X_train_tfidf = vectorizer.fit_transform(X_train)  # scipy CSR matrix
X_test_tfidf = vectorizer.transform(X_test)
print(f"features: {X_train_tfidf.shape[1]} (sparse, {X_train_tfidf.nnz} stored values)")

# %%
# Train on the sparse matrix
# --------------------------
clf = BackpropClassifier(
    hidden_layer_sizes=(32,), early_stopping=True, max_iter=200, random_state=0
)
clf.fit(X_train_tfidf, y_train)
print(f"test accuracy: {clf.score(X_test_tfidf, y_test):.3f}")
print("prediction for 'the rocket will launch to the moon':",
      clf.predict(vectorizer.transform(["the rocket will launch to the moon"]))[0])  # fmt: skip

# %%
# Which topics get confused
# -------------------------
ConfusionMatrixDisplay.from_estimator(clf, X_test_tfidf, y_test, colorbar=False)
plt.show()
